// Lint rules for the whole repository. The import restrictions below keep the architecture's
// boundaries: the Redfish driver knows nothing of Kubernetes or Pepr, and runtime code never pulls
// in the manifest generator (cdk8s) or schema builders (the module ships as a Secret under 1 MiB).
import js from "@eslint/js";
import tsParser from "@typescript-eslint/parser";
import tsPlugin from "@typescript-eslint/eslint-plugin";
import globals from "globals";

const kubernetesImports = ["pepr", "kubernetes-fluent-client", "@kubernetes/client-node"];

export default [
  { ignores: ["**/node_modules", "dist/**", ".testenv/**", "coverage/**"] },
  js.configs.recommended,
  {
    files: ["**/*.ts", "**/*.mts"],
    languageOptions: {
      parser: tsParser,
      parserOptions: {
        project: "./tsconfig.check.json",
        tsconfigRootDir: import.meta.dirname,
        sourceType: "module",
      },
      globals: { ...globals.node },
    },
    plugins: { "@typescript-eslint": tsPlugin },
    rules: {
      ...tsPlugin.configs.recommended.rules,
      "no-undef": "off",
      "no-unused-vars": "off",
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_" },
      ],
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
    },
  },
  {
    files: ["redfish/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          paths: kubernetesImports.map(name => ({
            name,
            message: "redfish/ knows nothing of Kubernetes or Pepr.",
          })),
          patterns: [
            {
              group: ["**/capabilities/**", "**/manifests/**"],
              message: "redfish/ is a standalone driver.",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["pepr.ts", "capabilities/**/*.ts"],
    ignores: ["capabilities/api/sources/**"],
    rules: {
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          paths: [
            { name: "cdk8s", message: "runtime code never imports the manifest generator" },
            { name: "cdk8s-plus-28", message: "runtime code never imports the manifest generator" },
          ],
          patterns: [
            { group: ["**/manifests/**"], message: "runtime code never imports manifests/" },
            { group: ["**/tests/**"], message: "production code never imports tests/" },
            {
              group: ["@sinclair/typebox*"],
              allowTypeImports: true,
              message: "schema builders stay out of the module bundle: use type-only imports",
            },
          ],
        },
      ],
    },
  },
  { files: ["**/*.mjs", "**/*.js"], languageOptions: { globals: { ...globals.node } } },
];
