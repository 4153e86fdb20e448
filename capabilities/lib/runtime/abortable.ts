// A view of an object whose every method first checks an AbortSignal. The runtime aborts a run
// when its object starts being deleted (or the operator stops); a controller wraps its port to the
// outside world (the BMC) in this, so the run stops before its next action instead of racing the
// deletion.

/** Every method call on the result throws the signal's reason once the signal has fired. */
export function abortable<T extends object>(target: T, signal: AbortSignal): T {
  return new Proxy(target, {
    get(obj, prop, receiver) {
      const value: unknown = Reflect.get(obj, prop, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        signal.throwIfAborted();
        return (value as (...a: unknown[]) => unknown).apply(obj, args);
      };
    },
  });
}
