// Kubernetes Events for state changes and failures, so `kubectl describe` tells the story.
import { paths, type KubeClient } from "./kube";

export type EventType = "Normal" | "Warning";

export interface EventInput {
  type: EventType;
  reason: string;
  message: string;
}

export interface InvolvedObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

export type EventRecorder = (obj: InvolvedObject, event: EventInput) => Promise<void>;

const COMPONENT = "beskar7";

/** Records an Event through the API server; a failure to record is logged, never thrown, since
 *  an event is a report and must not fail the work it reports on. */
export function apiServerEventRecorder(
  kube: KubeClient,
  log: (msg: string, err: unknown) => void,
): EventRecorder {
  return async (obj, event) => {
    const now = new Date().toISOString();
    const namespace = obj.metadata?.namespace ?? "default";
    try {
      await kube.create(paths.collection("", "v1", "events", namespace), {
        apiVersion: "v1",
        kind: "Event",
        metadata: { generateName: `${obj.metadata?.name ?? "object"}.`, namespace },
        involvedObject: {
          apiVersion: obj.apiVersion,
          kind: obj.kind,
          name: obj.metadata?.name,
          namespace,
          uid: obj.metadata?.uid,
          resourceVersion: obj.metadata?.resourceVersion,
        },
        type: event.type,
        reason: event.reason,
        message: event.message.slice(0, 1024),
        source: { component: COMPONENT },
        reportingComponent: COMPONENT,
        reportingInstance: process.env.HOSTNAME ?? COMPONENT,
        action: event.reason,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      });
    } catch (err) {
      log(`could not record event ${event.reason}`, err);
    }
  };
}
