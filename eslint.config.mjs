// Lint rules for the whole repository. The import restrictions below keep the architecture's
// boundaries: the Redfish driver knows nothing of Kubernetes or Pepr, and runtime code never pulls
// in the manifest generator (cdk8s) or schema builders (the module ships as a Secret under 1 MiB).
import js from "@eslint/js";
import tsParser from "@typescript-eslint/parser";
import tsPlugin from "@typescript-eslint/eslint-plugin";
import globals from "globals";

const kubernetesImports = ["pepr", "kubernetes-fluent-client", "@kubernetes/client-node"];

/** An import of a top-level folder, through its index ("../../redfish") or a file in it. */
const folder = name => [`**/${name}`, `**/${name}/**`];

// Runtime code (pepr.ts, capabilities/): what the module bundle must never pull in.
const runtimePaths = [
  { name: "cdk8s", message: "runtime code never imports the manifest generator" },
  { name: "cdk8s-plus-28", message: "runtime code never imports the manifest generator" },
];
const runtimePatterns = [
  { group: ["**/manifests/**"], message: "runtime code never imports manifests/" },
  { group: ["**/tests/**"], message: "production code never imports tests/" },
  { group: folder("lab"), message: "production code never imports lab/ (test BMC, control plane)" },
  {
    group: ["@sinclair/typebox*"],
    allowTypeImports: true,
    message: "schema builders stay out of the module bundle: use type-only imports",
  },
];

// Feature folders of capabilities/: none imports another; what two of them share lives in
// capabilities/lib or capabilities/api. Only physical-host/ talks to BMCs, so only it imports
// the Redfish driver.
const features = ["physical-host", "machine", "cluster"];
const noRedfish = {
  group: folder("redfish"),
  message: "only capabilities/physical-host imports the Redfish driver",
};
/** capabilities/lib and capabilities/api are shared by the features and import none of them. */
const noFeatures = shared =>
  features.map(feature => ({
    group: [`../${feature}`, `../../${feature}`, `../${feature}/**`, `**/${feature}/**`],
    message: `capabilities/${shared} is shared by the features and imports none of them`,
  }));
const capabilityFolders = [
  ...features.map(feature => ({
    files: [`capabilities/${feature}/**/*.ts`],
    patterns: [
      ...features
        .filter(other => other !== feature)
        .map(other => ({
          group: [`../${other}`, `../../${other}`, `../${other}/**`, `**/${other}/**`],
          message: `capabilities/${feature} never imports capabilities/${other}: share through capabilities/lib or capabilities/api`,
        })),
      ...(feature === "physical-host" ? [] : [noRedfish]),
    ],
  })),
  ...["lib", "api"].map(shared => ({
    files: [`capabilities/${shared}/**/*.ts`],
    patterns: [noRedfish, ...noFeatures(shared)],
  })),
];

export default [
  { ignores: ["**/node_modules", "dist/**", ".testenv/**", "coverage/**", "lab/captures/**"] },
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
  // boot/ (what an OS reads at first boot, kernel arguments, configuration volumes) is a
  // standalone library like redfish/: the boot service and controllers use it, it uses none of them.
  {
    files: ["boot/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          paths: kubernetesImports.map(name => ({
            name,
            message: "boot/ knows nothing of Kubernetes or Pepr.",
          })),
          patterns: [
            {
              group: [
                ...folder("capabilities"),
                ...folder("lab"),
                ...folder("tests"),
                ...folder("scripts"),
                ...folder("manifests"),
              ],
              message:
                "boot/ is a standalone library: it imports none of the operator, lab, tests or scripts.",
            },
          ],
        },
      ],
    },
  },
  // boot-service/ is the boot service process: boot/ behind a Kubernetes adapter. It may read the
  // API's constants (capabilities/api) but none of the operator's features, nor lab/ or tests/.
  {
    files: ["boot-service/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              // Anything under capabilities/ but api/ itself and its plain files (not sources/).
              regex: "(^|/)capabilities/(?!api(/[^/]+)?$)",
              message:
                "boot-service/ imports only capabilities/api (constants and types) of the operator.",
            },
            {
              group: [
                ...folder("lab"),
                ...folder("tests"),
                ...folder("scripts"),
                ...folder("manifests"),
              ],
              message: "boot-service/ is production code: no lab/, tests/, scripts/ or manifests/.",
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
        { paths: runtimePaths, patterns: runtimePatterns },
      ],
    },
  },
  // The same rule again per folder of capabilities/ (a later block replaces the rule's options,
  // so each repeats the runtime restrictions).
  ...capabilityFolders.map(({ files, patterns }) => ({
    files,
    rules: {
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          paths: runtimePaths,
          patterns: [...runtimePatterns, ...patterns],
        },
      ],
    },
  })),
  // api/sources builds the schemas for manifests/ and may use typebox and cdk8s, but stays out of
  // tests/, lab/ and the driver like the rest of capabilities/.
  {
    files: ["capabilities/api/sources/**/*.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: ["**/tests/**"], message: "production code never imports tests/" },
            { group: folder("lab"), message: "production code never imports lab/" },
            noRedfish,
            ...noFeatures("api"),
          ],
        },
      ],
    },
  },
  // The lab (test BMC, control plane, captures) serves scripts/ and tests/ and depends on neither;
  // scripts/ uses the lab, never tests/.
  {
    files: ["lab/**/*.ts", "lab/**/*.mts", "lab/**/*.mjs", "lab/**/*.js"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            { group: folder("tests"), message: "lab/ never imports tests/" },
            { group: folder("scripts"), message: "lab/ never imports scripts/" },
          ],
        },
      ],
    },
  },
  {
    files: ["scripts/**/*.ts", "scripts/**/*.mts", "scripts/**/*.mjs", "scripts/**/*.js"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: folder("tests"),
              message: "scripts/ never imports tests/: what both need lives in lab/",
            },
          ],
        },
      ],
    },
  },
  { files: ["**/*.mjs", "**/*.js"], languageOptions: { globals: { ...globals.node } } },
];
