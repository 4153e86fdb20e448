import { defineConfig } from "vitest/config";

// Two projects: unit tests run anywhere in milliseconds; integration tests run against the real
// kube-apiserver (and test BMCs) that tests/env/global-setup.ts starts once for the whole run.
export default defineConfig({
  test: {
    reporters: process.env.CI ? ["default"] : ["default"],
    projects: [
      {
        test: {
          name: "unit",
          include: ["tests/unit/**/*.test.ts"],
          environment: "node",
        },
      },
      {
        test: {
          name: "integration",
          include: ["tests/integration/**/*.test.ts"],
          environment: "node",
          globalSetup: ["tests/env/global-setup.ts"],
          // Two cores and one API server: files run one at a time, each with generous limits.
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 900_000,
        },
      },
    ],
  },
});
