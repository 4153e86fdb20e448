// The API package the Pepr module imports must stay tiny: constants, kind classes and types.
// Bundling it proves no schema builder (TypeBox) or manifest generator (cdk8s) leaks in.
import { build } from "esbuild";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";

import { GenericKind, modelToGroupVersionKind } from "kubernetes-fluent-client";

import * as api from "../../../capabilities/api";

const ROOT = resolve(__dirname, "../../..");

describe("capabilities/api runtime surface", () => {
  it("bundles without TypeBox, cdk8s or the schema sources", async () => {
    const result = await build({
      entryPoints: [resolve(ROOT, "capabilities/api/index.ts")],
      bundle: true,
      write: false,
      platform: "node",
      format: "cjs",
      metafile: true,
      external: ["kubernetes-fluent-client"],
      logLevel: "silent",
    });
    const inputs = Object.keys(result.metafile.inputs);
    // boot/os.ts is the table of what each OS reads, from which the API's descriptions of the
    // kernel parameters come (plain data, no TypeBox).
    expect(inputs.sort()).toEqual([
      "boot/os.ts",
      "capabilities/api/capi.ts",
      "capabilities/api/constants.ts",
      "capabilities/api/index.ts",
      "capabilities/api/kinds.ts",
    ]);
    const size = result.outputFiles[0]!.contents.byteLength;
    expect(size).toBeLessThan(32 * 1024);
  });

  it("imports TypeBox only as types outside the schema sources", async () => {
    for (const file of ["index.ts", "types.ts", "kinds.ts", "constants.ts", "capi.ts"]) {
      const source = await readFile(resolve(ROOT, "capabilities/api", file), "utf8");
      const valueImports = source.match(
        /^import (?!type )[^;]*from "(@sinclair\/typebox|\.\/sources[^"]*)"/gm,
      );
      expect(valueImports, file).toBeNull();
    }
  });

  it("registers the kind classes with their group, version and plural", () => {
    const expected = {
      PhysicalHost: "physicalhosts",
      Beskar7Machine: "beskar7machines",
      Beskar7MachineTemplate: "beskar7machinetemplates",
      Beskar7Cluster: "beskar7clusters",
      Beskar7ClusterTemplate: "beskar7clustertemplates",
    } as const;
    for (const [kind, plural] of Object.entries(expected)) {
      const model = api[kind as keyof typeof expected];
      expect(new model()).toBeInstanceOf(GenericKind);
      expect(modelToGroupVersionKind(model.name)).toEqual({
        group: "infrastructure.cluster.x-k8s.io",
        version: "v1beta1",
        kind,
        plural,
      });
    }
  });
});

describe("provider IDs", () => {
  it("round-trip between a host and its provider ID", () => {
    const id = api.providerIDFor("metal", "server-01");
    expect(id).toBe("beskar7://metal/server-01");
    expect(api.parseProviderID(id)).toEqual({ namespace: "metal", name: "server-01" });
  });

  it("reject IDs of other providers or malformed ones", () => {
    for (const id of [
      "aws:///us-east-1a/i-0abc",
      "beskar7://metal",
      "beskar7:///server",
      "beskar7://Metal/x",
    ]) {
      expect(api.parseProviderID(id), id).toBeUndefined();
    }
  });
});
