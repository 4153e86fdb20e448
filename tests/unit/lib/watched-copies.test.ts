import { describe, expect, it } from "vitest";

import { WatchedCopies } from "../../../capabilities/lib/watched-copies";

const obj = (name: string, resourceVersion: string, extra: Record<string, unknown> = {}) => ({
  metadata: { name, namespace: "lab", resourceVersion, managedFields: [{ manager: "capi" }] },
  spec: { ...extra },
});

describe("WatchedCopies", () => {
  it("keeps the newest copy without managedFields, never an older one", () => {
    const copies = new WatchedCopies<ReturnType<typeof obj>>();
    copies.put(obj("m", "10", { dataSecretName: "boot" }));
    copies.put(obj("m", "9"));
    expect(copies.get("lab", "m")).toEqual({
      metadata: { name: "m", namespace: "lab", resourceVersion: "10" },
      spec: { dataSecretName: "boot" },
    });
    copies.put(obj("m", "11"));
    expect(copies.get("lab", "m")?.metadata.resourceVersion).toBe("11");
    expect(copies.get("other", "m")).toBeUndefined();
  });

  it("forgets an object that is deleted or no longer kept", () => {
    const copies = new WatchedCopies<ReturnType<typeof obj>>();
    copies.put(obj("a", "1"));
    copies.put(obj("b", "1"));
    copies.remove(obj("a", "2"));
    copies.put(obj("b", "2"), false);
    expect(copies.size).toBe(0);
  });
});
