// Every capability of the module, in one list for pepr.ts.
import type { Capability } from "pepr";

export const capabilities: Capability[] = [];
