// The controller runtime every kind shares: the work queue, the one backoff rule, the controller
// that runs reconcile and finalize under the queue's limits and writes their results, and the
// module's graceful shutdown.
export * from "./abortable";
export * from "./backoff";
export * from "./controller";
export * from "./shutdown";
export * from "./workqueue";
