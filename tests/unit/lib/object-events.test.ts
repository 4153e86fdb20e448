import { describe, expect, it } from "vitest";

import { publish, subscribe } from "../../../capabilities/lib/object-events";

describe("object events", () => {
  it("hands each event to every subscriber of its kind, even when one throws", () => {
    const seen: string[] = [];
    subscribe<{ name: string }>("TestKindA", () => {
      throw new Error("a subscriber's bug");
    });
    subscribe<{ name: string }>("TestKindA", (obj, deleted) => seen.push(`${obj.name}:${deleted}`));
    subscribe<{ name: string }>("TestKindB", obj => seen.push(`B ${obj.name}`));
    publish("TestKindA", { name: "h1" });
    publish("TestKindA", { name: "h1" }, true);
    expect(seen).toEqual(["h1:false", "h1:true"]);
  });
});
