// The Beskar7 API as the capabilities use it: types (type-only, from the schema sources),
// string constants, and the registered KFC kind classes. Nothing here builds schemas at runtime.
export * from "./capi";
export * from "./constants";
export * from "./kinds";
export type * from "./types";
