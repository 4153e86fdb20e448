// The PhysicalHost state machine: one record per state (HostStateTable), joining the facts the API
// keeps about the state (api/constants.ts HostStates: failure policy, claimable, busy, what Ready
// means, description) with its handler. A handler looks at the host (and, when it must, the BMC)
// and returns a Transition: the next state, the status fields and conditions to set, events to
// record and when to look again. Handlers never write to the API server; controller.ts turns a
// Transition into the one status patch the runtime writes. Every BMC action is idempotent (it
// checks before it acts), so a handler re-run after a crash or a lost patch does no harm.
//
//            +--------------------------- Error <------------------------------+
//            |  (retried with backoff; back to the settled state when fixed)   | terminal failures
//            v                                                                  |
//   Enrolling --> Available --consumerRef--> Claimed --provisioning--> Provisioning --> Provisioned
//                     ^                                                                      |
//                     +--------------- Deprovisioning <------- consumerRef removed ----------+
//
// Deleting has no handler here: finalize.ts runs it. Detached and paused hosts keep their state
// (conditions Detached and Paused say so) and get no BMC calls.
import {
  Annotations,
  BootDelivery,
  ConditionReason,
  ConditionType,
  HostBootMethod,
  HostErrorReason,
  HostState,
  ProvisioningStep,
  type HardwareDetails,
  type HostErrorReasonName,
  type HostProvisioning,
  HostStates,
  type HostStateFacts,
  type HostStateName,
  type BootDeliveryName,
  type MachineAddress,
  type PhysicalHost,
  type PhysicalHostStatus,
  type PowerStateName,
  type ProvisioningStepName,
} from "../api";
import { findCondition, type ConditionInput } from "../lib/conditions";
import { TIMING_DEFAULTS, type Config } from "../lib/config";
import { displayURLs } from "../lib/display-url";
import { describeError } from "../lib/error-message";
import type { EventInput } from "../lib/events";
import { backoffDelay, type BackoffSettings } from "../lib/runtime";
import { BmcFailure, cutText, type HostBmc, type HostInventory } from "./bmc";
import {
  BootConfigError,
  bootMedia,
  firstServedURL,
  foldReport,
  newBootStatus,
  notConfigured,
  withoutToken,
  type BootMedia,
  type BootServiceAccess,
  type BootServiceState,
} from "./boot-session";
import { bootSignalOf, chooseDelivery } from "./delivery";
import { exitAfterActionForTests } from "./test-exit";

/** The timing settings the controller reads; each is documented on Config. */
export type HostControllerConfig = Pick<Config, keyof typeof TIMING_DEFAULTS>;

export const defaultHostControllerConfig: HostControllerConfig = TIMING_DEFAULTS;

/** The host controller's backoff settings (the rule itself is the runtime's backoffDelay). */
export const hostBackoff = (config: HostControllerConfig): BackoffSettings => ({
  baseMs: config.errorBackoffBaseMs,
  maxMs: config.errorBackoffMaxMs,
});

/** Fields of status a Transition may set; null clears a field. */
export type StatusUpdate = {
  [K in keyof PhysicalHostStatus]?: PhysicalHostStatus[K] | null;
};

export interface Transition {
  state: HostStateName;
  status?: StatusUpdate;
  conditions?: ConditionInput[];
  events?: EventInput[];
  /** Look again after this long; undefined waits for the next change to the object. */
  requeueAfterMs?: number;
  removeAnnotations?: string[];
}

export interface HostContext {
  host: PhysicalHost;
  now: Date;
  config: HostControllerConfig;
  /** The host's BMC, connected on first use in this reconcile. */
  bmc(): Promise<HostBmc>;
  /** Where the boot service is and its key (not configured when omitted). */
  bootService?: BootServiceAccess;
  /** Status an earlier handler of this reconcile decided (andThen), not yet written. */
  unwritten?: StatusUpdate;
}

type Handler = (ctx: HostContext) => Promise<Transition>;

/** One PhysicalHost state: the API's facts about it and the handler that runs in it. */
export interface HostStateRecord extends HostStateFacts {
  /**
   * Runs a reconcile in this state. None for Deleting (finalize.ts); a host found in a state
   * without one is re-enrolled.
   */
  handler?: Handler;
}

const withHandlers = (
  handlers: Partial<Record<HostStateName, Handler>>,
): Record<HostStateName, HostStateRecord> =>
  Object.fromEntries(
    Object.entries(HostStates).map(([state, facts]) => [
      state,
      { ...facts, handler: handlers[state as HostStateName] },
    ]),
  ) as Record<HostStateName, HostStateRecord>;

export const HostStateTable: Record<HostStateName, HostStateRecord> = withHandlers({
  Enrolling: enroll,
  Available: available,
  Claimed: claimed,
  Inspecting: provisioning,
  Provisioning: provisioning,
  Provisioned: provisioned,
  Deprovisioning: deprovisioning,
  Error: recover,
});

// ---------------------------------------------------------------------------------------------

/** Where a host belongs once its BMC is known to work, from spec and recorded progress. */
export function settledState(host: PhysicalHost): HostStateName {
  const consumer = host.spec?.consumerRef;
  const progress = host.status?.provisioning;
  if (consumer) {
    const sameConsumer =
      !progress?.consumerUID || !consumer.uid || progress.consumerUID === consumer.uid;
    if (sameConsumer && host.spec?.provisioning && planComplete(host)) return HostState.Provisioned;
    return HostState.Claimed;
  }
  if (progress && (progress.completedSteps?.length || progress.currentStep))
    return HostState.Deprovisioning;
  return HostState.Available;
}

async function enroll(ctx: HostContext): Promise<Transition> {
  const bmc = await ctx.bmc();
  const inventory = await bmc.inventory();
  const next = settledState(ctx.host);
  return {
    state: next,
    status: {
      ...inventoryStatus(inventory, ctx.now),
      errorReason: null,
      errorMessage: null,
      errorCount: null,
    },
    conditions: [...healthyBmc(), inspected(inventory)],
    events: [
      {
        type: "Normal",
        reason: "Enrolled",
        message: `${describe(inventory)} enrolled through ${ctx.host.spec?.redfishConnection?.address}`,
      },
    ],
    requeueAfterMs: next === HostState.Available ? ctx.config.powerCheckIntervalMs : 0,
  };
}

async function available(ctx: HostContext): Promise<Transition> {
  if (ctx.host.spec?.consumerRef) {
    const claim: Transition = {
      state: HostState.Claimed,
      events: [
        { type: "Normal", reason: "Claimed", message: `claimed by ${consumerName(ctx.host)}` },
      ],
      requeueAfterMs: 0,
    };
    // With its request already written, the claim goes on to provisioning in this run.
    return ctx.host.spec.provisioning ? andThen(ctx, claim, claimed) : claim;
  }
  return idle(ctx, HostState.Available);
}

async function claimed(ctx: HostContext): Promise<Transition> {
  const { host } = ctx;
  if (!host.spec?.consumerRef) return released(ctx);
  if (!host.spec.provisioning) {
    const m = await maintenance(ctx);
    return {
      state: HostState.Claimed,
      ...m,
      conditions: [
        ...(m.conditions ?? []),
        {
          type: ConditionType.Provisioned,
          status: "False",
          reason: ConditionReason.WaitingForProvisioningRequest,
          message: `claimed by ${consumerName(host)}; waiting for spec.provisioning`,
        },
      ],
    };
  }
  const progress = host.status?.provisioning;
  const fresh = !progress || (progress.consumerUID ?? "") !== (host.spec.consumerRef.uid ?? "");
  const start: Transition = fresh
    ? await startProvisioning(ctx, host.spec.provisioning)
    : {
        state: HostState.Provisioning,
        events: [
          {
            type: "Normal",
            reason: "ProvisioningStarted",
            message: `provisioning for ${consumerName(host)}: ${describeRequest(host.spec.provisioning)}`,
          },
        ],
        requeueAfterMs: 0,
      };
  // A new boot session goes on to the steps that clear the host (power off, eject) in this run;
  // the first step that gives the host what the service serves waits until the session is
  // written (checkServedMedia), since the service refuses media of a session it has not seen.
  if (start.state !== HostState.Provisioning) return start;
  return andThen(ctx, start, provisioning);
}

/**
 * A new provisioning: choose how its configuration reaches the OS (delivery.ts), start a boot
 * session where the boot service is needed (status.boot, written with the plan before any medium
 * is inserted), or stay Claimed with a condition naming what is missing. Waiting costs no BMC call.
 */
async function startProvisioning(ctx: HostContext, request: HostProvisioning): Promise<Transition> {
  const { host, now } = ctx;
  const access = ctx.bootService ?? notConfigured;
  const choice = chooseDelivery({
    request,
    capabilities: host.status?.hardwareDetails?.bootCapabilities,
    bootServiceConfigured: !!access.baseURL,
  });
  if (!choice.ok) return bootWait(ctx, ConditionReason.BootConfigInvalid, choice.message, true);
  let boot: Record<string, unknown> | null = null;
  if (choice.usesBootService) {
    const service = await access.state();
    if (!service.ready) return bootWait(ctx, service.reason, service.message);
    if (!host.status?.hardwareDetails?.systemUUID) {
      return bootWait(
        ctx,
        ConditionReason.SystemUUIDUnknown,
        `${choice.delivery} needs the boot service, which finds a host by its system UUID, and the BMC reported none for this host (status.hardwareDetails.systemUUID)`,
      );
    }
    try {
      boot = newBootStatus(host, request, choice, service.baseURL, now);
    } catch (err) {
      if (!(err instanceof BootConfigError)) throw err;
      // The renderer names the offending URL, which may be presigned.
      return bootWait(ctx, ConditionReason.BootConfigInvalid, displayURLs(err.message), true);
    }
  }
  const undelivered = choice.bootstrapNotDelivered;
  const message = `${choice.delivery}: ${undelivered ?? choice.reason}`;
  return {
    state: HostState.Provisioning,
    status: {
      provisioning: {
        consumerUID: host.spec!.consumerRef!.uid,
        currentStep: provisioningPlan(request, choice.delivery)[0],
        startedTime: now.toISOString(),
        completedSteps: [],
        attempts: 0,
      },
      // No session (PreBakedISO): whatever an earlier provisioning left is removed.
      boot: boot as StatusUpdate["boot"],
    },
    conditions: [
      {
        type: ConditionType.BootDelivered,
        status: undelivered ? "False" : "True",
        reason: undelivered
          ? ConditionReason.BootstrapDataNotDelivered
          : ConditionReason.BootDeliveryChosen,
        message,
      },
    ],
    events: [
      {
        type: "Normal",
        reason: "ProvisioningStarted",
        message: `provisioning for ${consumerName(host)}: ${describeRequest(request)}`,
      },
      // A pre-baked ISO with nothing to deliver has nothing to say.
      ...(choice.usesBootService || undelivered
        ? [
            {
              type: undelivered ? ("Warning" as const) : ("Normal" as const),
              reason: undelivered ? ConditionReason.BootstrapDataNotDelivered : "BootDelivery",
              message: boundedMessage(message, EVENT_MESSAGE_MAX),
            },
          ]
        : []),
    ],
    requeueAfterMs: 0,
  };
}

/**
 * The provisioning waits for what its boot needs (Claimed before it starts, Provisioning when a
 * served medium's key is gone). Retried on a backoff that grows with the wait (the condition's
 * age), without state of its own, and with no BMC call; `needsEdit` waits the longest, since only
 * a change of the request (which runs the host at once) can fix it.
 */
function bootWait(
  ctx: HostContext,
  reason: string,
  message: string,
  needsEdit = false,
  state: HostStateName = HostState.Claimed,
): Transition {
  const { host, now, config } = ctx;
  const before = host.status?.conditions?.find(c => c.type === ConditionType.BootDelivered);
  const since =
    before?.reason === reason && before.lastTransitionTime
      ? Date.parse(before.lastTransitionTime)
      : now.getTime();
  const waited = Math.max(0, now.getTime() - since);
  return {
    state,
    conditions: [
      { type: ConditionType.BootDelivered, status: "False", reason, message },
      {
        type: ConditionType.Provisioned,
        status: "False",
        reason,
        message: `provisioning for ${consumerName(host)} waits: ${message}`,
      },
    ],
    events:
      before?.reason === reason
        ? []
        : [{ type: "Warning", reason, message: boundedMessage(message, EVENT_MESSAGE_MAX) }],
    requeueAfterMs: needsEdit
      ? config.errorBackoffMaxMs
      : Math.min(config.errorBackoffMaxMs, Math.max(config.errorBackoffBaseMs, waited)),
  };
}

/**
 * Runs `next` in the same reconcile, on the host as `first` leaves it, and returns both as one
 * Transition (one status patch). A claim thus reaches its first BMC action in the run that sees
 * it, not after one run and one watch round trip per state (Claimed, Provisioning, each no-op
 * step): the issue's "first BMC action within 1 s of the claim".
 */
async function andThen(ctx: HostContext, first: Transition, next: Handler): Promise<Transition> {
  const status = { ...ctx.host.status, ...first.status, state: first.state };
  for (const [key, value] of Object.entries(status)) {
    if (value === null) delete (status as Record<string, unknown>)[key];
  }
  const second = await next({
    ...ctx,
    host: { ...ctx.host, status: status as PhysicalHostStatus },
    unwritten: { ...ctx.unwritten, ...first.status },
  });
  return {
    ...second,
    status: { ...first.status, ...second.status },
    conditions: [...(first.conditions ?? []), ...(second.conditions ?? [])],
    events: [...(first.events ?? []), ...(second.events ?? [])],
    removeAnnotations: [...(first.removeAnnotations ?? []), ...(second.removeAnnotations ?? [])],
  };
}

/**
 * The step after which the machine fetches what the boot service serves, per delivery path (none
 * for a pre-baked ISO without a volume): the insert of the patched ISO or of the configuration
 * volume (a BMC may read an inserted image at once), the power-on of a network boot (its override
 * is only a setting until the firmware runs and fetches the iPXE script). So a host that is off
 * when claimed has its override set while the service learns of the new session.
 */
const SERVED_BY: Readonly<Record<string, ProvisioningStepName>> = {
  [BootDelivery.PatchedISO]: ProvisioningStep.InsertBootMedia,
  [BootDelivery.ConfigVolume]: ProvisioningStep.InsertConfigMedia,
  [BootDelivery.NetworkBoot]: ProvisioningStep.PowerOn,
};

/** The first steps of every plan: they leave the host off with nothing inserted. */
const CLEARING_STEPS: readonly ProvisioningStepName[] = [
  ProvisioningStep.PowerOff,
  ProvisioningStep.EjectMedia,
];

/**
 * The steps that execute a provisioning request, in order, for the delivery path its boot session
 * recorded: a config volume adds its insert, a signal the OS gives adds the wait for it.
 */
export function provisioningPlan(
  request: HostProvisioning,
  delivery?: BootDeliveryName,
): ProvisioningStepName[] {
  const steps: ProvisioningStepName[] = [...CLEARING_STEPS];
  if (request.mode === HostBootMethod.VirtualMedia) {
    steps.push(ProvisioningStep.InsertBootMedia);
    if (request.configMediaURL || delivery === BootDelivery.ConfigVolume) {
      steps.push(ProvisioningStep.InsertConfigMedia);
    }
  }
  // The override goes last, right before power-on: some BMCs drop an override set before
  // media are inserted.
  steps.push(ProvisioningStep.SetBootOverride, ProvisioningStep.PowerOn);
  const signal = bootSignalOf(request, delivery);
  if (signal === "reported") steps.push(ProvisioningStep.AwaitInspection);
  if (signal === "configFetched") steps.push(ProvisioningStep.AwaitBoot);
  return steps;
}

function planComplete(host: PhysicalHost): boolean {
  const request = host.spec?.provisioning;
  if (!request) return false;
  const done = new Set(host.status?.provisioning?.completedSteps?.map(s => s.step));
  return provisioningPlan(request, host.status?.boot?.delivery).every(step => done.has(step));
}

async function provisioning(ctx: HostContext): Promise<Transition> {
  const { host } = ctx;
  const request = host.spec?.provisioning;
  if (!host.spec?.consumerRef || !request) return released(ctx);
  const progress = host.status?.provisioning ?? { completedSteps: [] };
  const done = new Set(progress.completedSteps?.map(s => s.step));
  const plan = provisioningPlan(request, host.status?.boot?.delivery);
  const next = plan.find(step => !done.has(step));
  const awaiting = next === ProvisioningStep.AwaitBoot || next === ProvisioningStep.AwaitInspection;
  if (awaiting) {
    const waiting = awaitSignal(ctx, next);
    if (waiting) return waiting;
  }
  // What the boot service serves is read as the machine would right before the step after which
  // it is fetched; every step before it (power-off, eject, an unchanged ISO beside a configuration
  // volume, a network boot's override) runs while the service learns of the new session.
  if (next !== undefined && next === SERVED_BY[host.status?.boot?.delivery ?? ""]) {
    const unservable = await checkServedMedia(ctx, request);
    if (unservable) return unservable;
  }
  if (!next) {
    return {
      state: HostState.Provisioned,
      // null: status is merge-patched, so an omitted field would stay on the server.
      status: { provisioning: { ...progress, currentStep: null as unknown as undefined } },
      conditions: [
        {
          type: ConditionType.Provisioned,
          status: "True",
          reason: ConditionReason.ProvisioningSucceeded,
          message: describeRequest(request),
        },
      ],
      events: [
        { type: "Normal", reason: "Provisioned", message: `booting ${describeRequest(request)}` },
      ],
      requeueAfterMs: ctx.config.powerCheckIntervalMs,
    };
  }

  let outcome: StepOutcome;
  const signalled: StatusUpdate = {};
  if (awaiting) {
    // The signal is there (awaitSignal returned nothing); a report fills hardwareDetails, where
    // the claiming machine re-checks its hardware requirements.
    const report = host.status?.boot?.report;
    if (report) signalled.hardwareDetails = foldReport(host.status?.hardwareDetails, report);
    outcome = {
      note:
        next === ProvisioningStep.AwaitBoot || !host.status?.boot?.reportedTime
          ? "the OS fetched its configuration from the boot service"
          : `the inspection report arrived${report ? " and was folded into hardwareDetails" : ""}`,
    };
  } else {
    const media = await mediaFor(ctx, request, next);
    if ("wait" in media) return media.wait;
    const bmc = await ctx.bmc();
    outcome = await runStep(next, request, bmc, media);
    if (outcome.note) exitAfterActionForTests(next);
  }
  const completedSteps = [
    ...(progress.completedSteps ?? []),
    { step: next, completedTime: ctx.now.toISOString() },
  ];
  // currentStep names the step in progress: the one after this, until the plan is done.
  const pending = plan.find(step => step !== next && !done.has(step));
  const stepDone: Transition = {
    // Waiting for the inspection report is a step of Provisioning: the boot service serves the
    // iPXE script and accepts the report only from a Provisioning host.
    state: HostState.Provisioning,
    status: {
      ...signalled,
      provisioning: {
        ...progress,
        currentStep: pending ?? (null as unknown as undefined),
        completedSteps,
      },
      ...(outcome.power ? { observedPowerState: outcome.power } : {}),
    },
    conditions: [
      ...(awaiting
        ? [
            {
              type: ConditionType.BootDelivered,
              status: "True" as const,
              reason: ConditionReason.BootSignalReceived,
              message: outcome.note,
            },
          ]
        : healthyBmc()),
      {
        type: ConditionType.Provisioned,
        status: "False",
        reason: ConditionReason.ProvisioningInProgress,
        message: `step ${next} done${outcome.note ? `: ${outcome.note}` : ""}`,
      },
    ],
    events: outcome.note ? [{ type: "Normal", reason: next, message: outcome.note }] : [],
    requeueAfterMs: 0,
  };
  // One BMC action per run, recorded before the next: a step that found nothing to do (already
  // off, nothing inserted) goes straight on to the next step.
  return outcome.note || !pending ? stepDone : andThen(ctx, stepDone, provisioning);
}

interface StepOutcome {
  note?: string;
  power?: PowerStateName;
}

/** How often a host waiting for its boot signal looks again (the signal's write wakes it too). */
const SIGNAL_RECHECK_MS = 60_000;

/**
 * Waiting for the OS's signal (configuration fetched, report accepted), which the boot service
 * writes into status.boot; undefined once it is there. No signal within bootSignalTimeoutMs of
 * the power-on gives a BootSignalTimeout condition and one warning; the host keeps waiting (a slow
 * installer may still call) and its machine shows the reason.
 */
function awaitSignal(
  ctx: HostContext,
  step: typeof ProvisioningStep.AwaitBoot | typeof ProvisioningStep.AwaitInspection,
): Transition | undefined {
  const { host, now, config } = ctx;
  const boot = host.status?.boot;
  const fetch = step === ProvisioningStep.AwaitBoot;
  // A network-booted OS that never posts Beskar7's report (Talos, Flatcar) still fetches its
  // configuration: that fetch ends the wait for the report too.
  if (fetch ? boot?.configFetchedTime : boot?.reportedTime || boot?.configFetchedTime)
    return undefined;
  const state = HostState.Provisioning;
  const poweredOn = host.status?.provisioning?.completedSteps?.find(
    s => s.step === ProvisioningStep.PowerOn,
  )?.completedTime;
  const elapsed = now.getTime() - (poweredOn ? Date.parse(poweredOn) : now.getTime());
  const what = fetch
    ? "the OS fetching its configuration from the boot service"
    : "the inspection image's report or the OS fetching its configuration";
  if (elapsed < config.bootSignalTimeoutMs) {
    return {
      state,
      conditions: [
        {
          type: ConditionType.Provisioned,
          status: "False",
          reason: ConditionReason.WaitingForBootSignal,
          message: `powered on; waiting for ${what}`,
        },
      ],
      requeueAfterMs: Math.min(SIGNAL_RECHECK_MS, config.bootSignalTimeoutMs - elapsed),
    };
  }
  const message = `no sign of ${what} ${Math.round(elapsed / 1000)} s after power-on (BESKAR7_BOOT_SIGNAL_TIMEOUT_MS=${config.bootSignalTimeoutMs}): the BMC may not have fetched the media, the host may not have booted them, or the host cannot reach the boot service`;
  const before = host.status?.conditions?.find(c => c.type === ConditionType.BootDelivered);
  return {
    state,
    conditions: [
      {
        type: ConditionType.BootDelivered,
        status: "False",
        reason: ConditionReason.BootSignalTimeout,
        message,
      },
      {
        type: ConditionType.Provisioned,
        status: "False",
        reason: ConditionReason.BootSignalTimeout,
        message,
      },
    ],
    events:
      before?.reason === ConditionReason.BootSignalTimeout
        ? []
        : [{ type: "Warning", reason: ConditionReason.BootSignalTimeout, message }],
    requeueAfterMs: SIGNAL_RECHECK_MS,
  };
}

/** How long after a session starts a 404 from the boot service is taken for its watch lagging. */
const SESSION_PROPAGATION_MS = 30_000;
/** How soon a probe is repeated meanwhile (the service re-reads a host whose session it lacks). */
const SESSION_RECHECK_MS = 250;

/**
 * Before the step after which the host fetches what the boot service serves (SERVED_BY, the only
 * caller's test): read what the machine will fetch first (the start of its medium, or its iPXE
 * script) as the machine would. What the service refuses to serve (its source ISO 404s, is not
 * ISO9660, has no room for the arguments, the host has no target image) holds the host, off with
 * nothing served inserted, with BootMediaUnavailable and the service's reason, instead of powered
 * on with something that cannot boot. A probe that gets no answer proves nothing and does not
 * hold the host. A session decided in this reconcile is written first: the service cannot know it
 * yet.
 */
async function checkServedMedia(
  ctx: HostContext,
  request: HostProvisioning,
): Promise<Transition | undefined> {
  const access = ctx.bootService;
  if (!access?.probeMedia) return undefined;
  const service = await access.state();
  if (!service.ready)
    return bootWait(ctx, service.reason, service.message, false, HostState.Provisioning);
  const served = firstServedURL(ctx.host, request, service);
  if (!served) return undefined;
  if (ctx.unwritten?.boot) return { state: HostState.Provisioning, requeueAfterMs: 0 };
  const probe = await access.probeMedia(served);
  if (probe.ok || !probe.definite) return undefined;
  // A session written a moment ago may not have reached the service yet (it learns of sessions
  // through its watch of hosts, which lags the write under load); its 404 then means "not yet".
  // Taken for a refusal, it held the host for a backoff, or sent a pre-baked ISO without its
  // bootstrap data.
  const issued = Date.parse(ctx.host.status?.boot?.issuedTime ?? "");
  if (probe.notFound && ctx.now.getTime() - issued < SESSION_PROPAGATION_MS) {
    return { state: HostState.Provisioning, requeueAfterMs: SESSION_RECHECK_MS };
  }
  if (!request.osFamily) {
    // A pre-baked ISO boots by itself; its cidata volume only carries the bootstrap data. When
    // the boot service cannot serve that volume, the ISO goes alone and the host says why.
    const why = `the bootstrap data cannot be delivered to this pre-baked ISO: ${probe.message}`;
    return {
      state: HostState.Provisioning,
      status: {
        boot: {
          ...ctx.host.status!.boot!,
          delivery: BootDelivery.PreBakedISO,
          reason: boundedMessage(`no osFamily: the ISO boots unchanged; ${why}`, 1024),
        },
      },
      conditions: [
        {
          type: ConditionType.BootDelivered,
          status: "False",
          reason: ConditionReason.BootstrapDataNotDelivered,
          message: why,
        },
      ],
      events: [
        {
          type: "Warning",
          reason: ConditionReason.BootstrapDataNotDelivered,
          message: boundedMessage(why, EVENT_MESSAGE_MAX),
        },
      ],
      requeueAfterMs: 0,
    };
  }
  return bootWait(
    ctx,
    ConditionReason.BootMediaUnavailable,
    probe.message,
    false,
    HostState.Provisioning,
  );
}

/**
 * The media a step works with: the boot service's URLs where it serves them (their token derived
 * from the session and the service's key), else the request's. Without the key the step waits
 * with a condition instead of giving the BMC a URL that would be refused.
 */
async function mediaFor(
  ctx: HostContext,
  request: HostProvisioning,
  step: ProvisioningStepName,
): Promise<BootMedia | { wait: Transition }> {
  const delivery = ctx.host.status?.boot?.delivery;
  const served = delivery === BootDelivery.PatchedISO || delivery === BootDelivery.ConfigVolume;
  const usesMedia =
    step === ProvisioningStep.EjectMedia ||
    step === ProvisioningStep.InsertBootMedia ||
    step === ProvisioningStep.InsertConfigMedia;
  if (!served || !usesMedia) return request;
  const service: BootServiceState = await (ctx.bootService ?? notConfigured).state();
  if (!service.ready) {
    return {
      wait: bootWait(
        ctx,
        service.reason,
        service.message,
        false,
        ctx.host.status?.state as HostStateName,
      ),
    };
  }
  return bootMedia(ctx.host, request, service);
}

/**
 * Runs one provisioning step; each looks before it acts, so a repeat is harmless. `media` are the
 * URLs the BMC is given: the boot service's where it serves them, the request's by default.
 */
export async function runStep(
  step: ProvisioningStepName,
  request: HostProvisioning,
  bmc: HostBmc,
  media: BootMedia = request,
): Promise<StepOutcome> {
  switch (step) {
    case ProvisioningStep.PowerOff: {
      // The host is about to be re-imaged: nothing on it needs a graceful shutdown. One read of
      // the system: it tells the power state and the reset types.
      const sent = await bmc.powerOff({ force: true });
      return sent ? { note: "powered off", power: "Off" } : { power: "Off" };
    }
    case ProvisioningStep.EjectMedia: {
      // Media this request inserts itself stay: a step replayed after a lost status patch (or
      // chained after later steps, see andThen) must not undo the insert that followed it.
      const wanted = new Set([media.bootISO, media.configMediaURL].filter(Boolean));
      const inserted = (await bmc.virtualMedia()).filter(s => s.inserted);
      if (inserted.every(s => s.image !== undefined && wanted.has(s.image))) return {};
      await bmc.ejectMedia();
      return {
        note: withoutToken(displayURLs(`ejected ${inserted.map(s => s.image ?? s.id).join(", ")}`)),
      };
    }
    case ProvisioningStep.InsertBootMedia:
      return insertOnce(bmc, media.bootISO!, "cd");
    case ProvisioningStep.InsertConfigMedia:
      return insertOnce(bmc, media.configMediaURL!, "usb");
    case ProvisioningStep.SetBootOverride: {
      const target =
        request.mode === HostBootMethod.VirtualMedia ? "Cd" : (request.networkBootTarget ?? "Pxe");
      const result = await bmc.setBootOverride({
        target,
        persistent: false,
        mode: request.bootMode,
        httpBootUri: target === "UefiHttp" ? request.httpBootURI : undefined,
      });
      return {
        note: `one-time boot from ${result.targetSent} (${result.state.mode ?? request.bootMode ?? "UEFI"})`,
      };
    }
    case ProvisioningStep.PowerOn: {
      // PowerOff ran first in this plan, so On here means this step already powered it on.
      const sent = await bmc.powerOn();
      return sent ? { note: "powered on", power: "On" } : { power: "On" };
    }
    default:
      throw new Error(`provisioning step ${step} is not run by the PhysicalHost controller`);
  }
}

async function insertOnce(bmc: HostBmc, image: string, kind: "cd" | "usb"): Promise<StepOutcome> {
  // The driver looks first: an image already in a slot (a step replayed) is not sent again.
  const result = await bmc.insertMedia({ image, kind });
  if (result.alreadyInserted) return {};
  return { note: withoutToken(displayURLs(`inserted ${image} into ${result.slot.id}`)) };
}

async function provisioned(ctx: HostContext): Promise<Transition> {
  if (!ctx.host.spec?.consumerRef) return released(ctx);
  return idle(ctx, HostState.Provisioned);
}

/** The consumer let go: clean up if anything was done, else the host is free again. */
function released(ctx: HostContext): Transition {
  const progress = ctx.host.status?.provisioning;
  if (progress && (progress.completedSteps?.length || progress.currentStep)) {
    return {
      state: HostState.Deprovisioning,
      events: [
        { type: "Normal", reason: "Released", message: "released by its consumer; deprovisioning" },
      ],
      requeueAfterMs: 0,
    };
  }
  return {
    state: HostState.Available,
    status: { provisioning: null, boot: null },
    conditions: [notProvisioned()],
    events: [{ type: "Normal", reason: "Released", message: "released by its consumer" }],
    requeueAfterMs: ctx.config.powerCheckIntervalMs,
  };
}

async function deprovisioning(ctx: HostContext): Promise<Transition> {
  const bmc = await ctx.bmc();
  const done: string[] = [];
  if ((await bmc.virtualMedia()).some(s => s.inserted)) {
    await bmc.ejectMedia();
    done.push("ejected virtual media");
  }
  const override = await bmc.bootOverride();
  if (override.enabled !== "Disabled") {
    await bmc.clearBootOverride();
    done.push("cleared the boot override");
  }
  if (await bmc.powerOff({ gracefulTimeoutMs: ctx.config.gracefulShutdownTimeoutMs })) {
    done.push("powered off");
  }
  const host: PhysicalHost = {
    ...ctx.host,
    status: { ...ctx.host.status, provisioning: undefined },
  };
  const next = settledState(host);
  return {
    state: next,
    // Removing status.boot ends the session: every token derived from it is refused from now on.
    status: { provisioning: null, boot: null, observedPowerState: "Off" },
    conditions: [...healthyBmc(), notProvisioned()],
    events: [
      {
        type: "Normal",
        reason: "Deprovisioned",
        message: done.length ? done.join(", ") : "nothing to clean up",
      },
    ],
    requeueAfterMs: next === HostState.Available ? ctx.config.powerCheckIntervalMs : 0,
  };
}

/** Error: try the BMC again; when it answers, re-enroll into the settled state. */
async function recover(ctx: HostContext): Promise<Transition> {
  const result = await enroll(ctx);
  return {
    ...result,
    events: [
      {
        type: "Normal",
        reason: "Recovered",
        message: `recovered from ${ctx.host.status?.errorReason ?? "error"}`,
      },
    ],
  };
}

/** An idle host (Available, Provisioned): keep power observed and enforced, act on annotations. */
async function idle(ctx: HostContext, state: HostStateName): Promise<Transition> {
  const m = await maintenance(ctx);
  return { state, ...m, requeueAfterMs: m.requeueAfterMs ?? ctx.config.powerCheckIntervalMs };
}

/** Where a host is with the reboot annotation: a new request to record, or a recorded one. */
function rebootStep(host: PhysicalHost): {
  request?: ConditionInput;
  pending?: { hard: boolean };
} {
  const annotations = host.metadata?.annotations ?? {};
  const recorded = findCondition(host.status?.conditions, ConditionType.Rebooting);
  const pending =
    recorded?.status === "True" && recorded.reason === ConditionReason.RebootRequested
      ? { hard: recorded.message === REBOOT_HARD }
      : undefined;
  if (Annotations.reboot in annotations) {
    // Recorded already (the annotation patch was lost): the record stands, once.
    const hard = pending?.hard ?? annotations[Annotations.reboot] === "hard";
    return {
      request: {
        type: ConditionType.Rebooting,
        status: "True",
        reason: ConditionReason.RebootRequested,
        message: hard ? REBOOT_HARD : REBOOT_GRACEFUL,
      },
    };
  }
  return { pending };
}

const REBOOT_HARD = "hard reset (ForceRestart) requested";
const REBOOT_GRACEFUL = "graceful restart requested";

/**
 * The recorded reboot, at most once: whatever the BMC answers, the record is closed (Rebooted or
 * RebootFailed), since a reset that timed out may still have happened. A failure is reported,
 * not retried: annotate again to retry.
 */
async function rebootOnce(
  bmc: HostBmc,
  power: PowerStateName,
  hard: boolean,
  events: EventInput[],
): Promise<ConditionInput> {
  try {
    if (power === "Off") await bmc.powerOn();
    else await bmc.restart({ force: hard });
  } catch (err) {
    const message = boundedMessage(`reboot failed: ${describeError(err)}`, EVENT_MESSAGE_MAX);
    events.push({ type: "Warning", reason: ConditionReason.RebootFailed, message });
    return {
      type: ConditionType.Rebooting,
      status: "False",
      reason: ConditionReason.RebootFailed,
      message,
    };
  }
  const message = hard ? "hard reset (ForceRestart)" : "graceful restart";
  events.push({ type: "Normal", reason: "Rebooted", message });
  return {
    type: ConditionType.Rebooting,
    status: "False",
    reason: ConditionReason.Rebooted,
    message,
  };
}

/** Power observation, spec.online, the reboot and refresh-inventory annotations. */
async function maintenance(ctx: HostContext): Promise<Omit<Transition, "state">> {
  const { host, config, now } = ctx;
  const bmc = await ctx.bmc();
  const annotations = host.metadata?.annotations ?? {};
  const out: Omit<Transition, "state"> = {
    status: {},
    conditions: [...healthyBmc()],
    events: [],
    removeAnnotations: [],
  };

  const lastInventory = host.status?.lastInventoryTime
    ? Date.parse(host.status.lastInventoryTime)
    : 0;
  if (
    Annotations.refreshInventory in annotations ||
    now.getTime() - lastInventory >= config.inventoryIntervalMs
  ) {
    const inventory = await bmc.inventory();
    Object.assign(out.status!, inventoryStatus(inventory, now));
    out.conditions!.push(inspected(inventory));
    if (Annotations.refreshInventory in annotations) {
      out.removeAnnotations!.push(Annotations.refreshInventory);
      out.events!.push({
        type: "Normal",
        reason: "InventoryRefreshed",
        message: describe(inventory),
      });
    }
  }

  let power = await bmc.powerState();
  const reboot = rebootStep(host);
  if (reboot.request) {
    // First the request comes off the object and is recorded (Rebooting=True, RebootRequested);
    // the reset is the next run's, so no retry or lost annotation patch can reset twice.
    out.removeAnnotations!.push(Annotations.reboot);
    out.conditions!.push(reboot.request);
    out.requeueAfterMs = 0;
  } else if (reboot.pending) {
    out.conditions!.push(await rebootOnce(bmc, power, reboot.pending.hard, out.events!));
    if (out.conditions!.at(-1)!.reason === ConditionReason.Rebooted) {
      power = "PoweringOn";
      out.requeueAfterMs = config.powerSettleMs;
    }
  }

  const desired = host.spec?.online;
  if (desired !== undefined && power !== "PoweringOn" && power !== "PoweringOff") {
    const want: PowerStateName = desired ? "On" : "Off";
    if (power !== want) {
      if (desired) await bmc.powerOn();
      else await bmc.powerOff({ gracefulTimeoutMs: config.gracefulShutdownTimeoutMs });
      out.events!.push({
        type: "Normal",
        reason: desired ? "PoweredOn" : "PoweredOff",
        message: `spec.online is ${desired}; the host was ${power}`,
      });
      power = desired ? "PoweringOn" : "PoweringOff";
      out.requeueAfterMs = config.powerSettleMs;
    }
    out.conditions!.push({
      type: ConditionType.PowerStateSynced,
      status: power === want ? "True" : "False",
      reason:
        power === want ? ConditionReason.PowerStateMatches : ConditionReason.PowerStateMismatch,
      message: `spec.online=${desired}, observed ${power}`,
    });
  }
  out.status!.observedPowerState = power;
  return out;
}

// ---------------------------------------------------------------------------------------------

/** status.errorMessage's maxLength (PhysicalHostStatus schema); condition messages allow 32768. */
export const ERROR_MESSAGE_MAX = 4096;
/** What an Event's message keeps (capabilities/lib/events.ts cuts there too). */
export const EVENT_MESSAGE_MAX = 1024;

/** A BMC's error text as status and events may hold it: no control characters but tab and
 *  newline, at most `max` UTF-16 units (the last an ellipsis when cut). */
export function boundedMessage(message: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  const clean = message.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, "");
  return clean.length > max ? `${cutText(clean, max - 1)}…` : clean;
}

/** A failure's reason and whether waiting can fix it without anyone's help. The BMC port and the
 *  connector throw BmcFailure; anything else (a bug, a stray error) is a BMCError worth retrying. */
export function classify(err: unknown): {
  reason: HostErrorReasonName;
  transient: boolean;
  message: string;
} {
  // A BMC's text can be anything: bounded to errorMessage's limit (and so the conditions'), and
  // any URL in it (an image the BMC could not load) without its query or userinfo.
  if (err instanceof BmcFailure) {
    return {
      reason: err.reason,
      transient: err.transient,
      message: boundedMessage(displayURLs(err.message), ERROR_MESSAGE_MAX),
    };
  }
  const message = boundedMessage(displayURLs(describeError(err)), ERROR_MESSAGE_MAX);
  return { reason: HostErrorReason.BMCError, transient: true, message };
}

/** The Transition for a failed handler, by the state's failure policy. */
export function failure(
  host: PhysicalHost,
  err: unknown,
  config: HostControllerConfig,
  random = Math.random,
): Transition {
  const state = (host.status?.state ?? HostState.Enrolling) as HostStateName;
  const { reason, transient, message } = classify(err);
  const errorCount = (host.status?.errorCount ?? 0) + 1;
  const requeueAfterMs = backoffDelay(errorCount, hostBackoff(config), random);
  const policy = HostStateTable[state].failure;
  const next =
    policy === "keep-always" || (policy === "keep" && transient) ? state : HostState.Error;
  const conditions: ConditionInput[] = [bmcCondition(reason, message)];
  const credentialsReason = CREDENTIALS_FAILURE[reason];
  if (credentialsReason) {
    conditions.push({
      type: ConditionType.CredentialsValid,
      status: "False",
      reason: credentialsReason,
      message,
    });
  }
  const firstTime = host.status?.errorReason !== reason || host.status?.errorMessage !== message;
  return {
    state: next,
    status: { errorReason: reason, errorMessage: message, errorCount },
    conditions,
    events: firstTime
      ? [
          {
            type: "Warning",
            reason,
            message: boundedMessage(
              next !== state ? `${state} -> Error: ${message}` : message,
              EVENT_MESSAGE_MAX,
            ),
          },
        ]
      : [],
    requeueAfterMs,
  };
}

/** Failures that say the credentials are wrong or missing, with their condition reason. */
const CREDENTIALS_FAILURE: Partial<Record<HostErrorReasonName, string>> = {
  [HostErrorReason.AuthenticationFailed]: ConditionReason.AuthenticationFailed,
  [HostErrorReason.SecretNotFound]: ConditionReason.SecretNotFound,
  [HostErrorReason.SecretInvalid]: ConditionReason.SecretInvalid,
  [HostErrorReason.SecretNotLabelled]: ConditionReason.SecretNotLabelled,
};

/** Failures found before any BMC request: whether the BMC is reachable is unknown. */
const NOT_ASKED: Partial<Record<HostErrorReasonName, string>> = {
  [HostErrorReason.SecretNotFound]: ConditionReason.SecretNotFound,
  [HostErrorReason.SecretInvalid]: ConditionReason.SecretInvalid,
  [HostErrorReason.SecretNotLabelled]: ConditionReason.SecretNotLabelled,
  [HostErrorReason.AddressRefused]: ConditionReason.AddressRefused,
  [HostErrorReason.NamespaceIgnored]: ConditionReason.NamespaceIgnored,
};

function bmcCondition(reason: HostErrorReasonName, message: string): ConditionInput {
  // Without credentials (or an allowed address) the BMC was never asked: reachability is unknown.
  const noSecret = reason in NOT_ASKED;
  return {
    type: ConditionType.BMCReachable,
    status: noSecret ? "Unknown" : reason === HostErrorReason.ActionRejected ? "True" : "False",
    // A refused action came from a BMC that answered: reachable, and the refusal says why.
    reason:
      NOT_ASKED[reason] ??
      CREDENTIALS_FAILURE[reason] ??
      (reason === HostErrorReason.ActionRejected
        ? ConditionReason.Connected
        : ConditionReason.ConnectionFailed),
    message,
  };
}

function healthyBmc(): ConditionInput[] {
  return [
    { type: ConditionType.BMCReachable, status: "True", reason: ConditionReason.Connected },
    {
      type: ConditionType.CredentialsValid,
      status: "True",
      reason: ConditionReason.CredentialsValid,
    },
  ];
}

function inspected(inventory: HostInventory): ConditionInput {
  return {
    type: ConditionType.Inspected,
    status: "True",
    reason: ConditionReason.InventoryCollected,
    message: describe(inventory),
  };
}

function notProvisioned(): ConditionInput {
  return {
    type: ConditionType.Provisioned,
    status: "False",
    reason: ConditionReason.NotReady,
    message: "not provisioned",
  };
}

/** The inventory as status fields; the BMC port has already put every value in the API's terms. */
export function inventoryStatus(inventory: HostInventory, now: Date): StatusUpdate {
  const details: HardwareDetails = {
    manufacturer: inventory.manufacturer,
    model: inventory.model,
    serialNumber: inventory.serialNumber,
    systemUUID: inventory.uuid,
    biosVersion: inventory.biosVersion,
    bmcFirmwareVersion: inventory.bmcFirmwareVersion,
    health: inventory.health,
    cpu: inventory.processors,
    memoryGiB:
      inventory.memory.totalGiB === undefined ? undefined : Math.round(inventory.memory.totalGiB),
    disks: inventory.disks.slice(0, 64),
    nics: inventory.nics.slice(0, 64).map(({ ipAddresses: _, ...nic }) => nic),
    bootCapabilities: inventory.bootCapabilities,
  };
  const addresses = addressesOf(inventory);
  return {
    hardwareDetails: prune(details),
    addresses: addresses.length ? addresses : null,
    observedPowerState: inventory.powerState,
    lastInventoryTime: now.toISOString(),
  };
}

function addressesOf(inventory: HostInventory): MachineAddress[] {
  const out: MachineAddress[] = [];
  const seen = new Set<string>();
  const add = (type: MachineAddress["type"], address: string | undefined) => {
    if (address && !seen.has(`${type}/${address}`)) {
      seen.add(`${type}/${address}`);
      out.push({ type, address });
    }
  };
  add("Hostname", inventory.hostName);
  for (const nic of inventory.nics) for (const ip of nic.ipAddresses ?? []) add("InternalIP", ip);
  return out.slice(0, 32);
}

/** Drops undefined fields, so the status patch holds only what the BMC reported. */
function prune<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function describe(inventory: HostInventory): string {
  const name = [inventory.manufacturer, inventory.model].filter(Boolean).join(" ") || "host";
  return `${name} (serial ${inventory.serialNumber ?? "unknown"}, ${inventory.processors.cores ?? "?"} cores, ${inventory.memory.totalGiB ?? "?"} GiB)`;
}

/** The request for events and conditions: image URLs without their query or userinfo. */
function describeRequest(request: HostProvisioning): string {
  return displayURLs(
    request.mode === HostBootMethod.VirtualMedia
      ? `virtual media ${request.bootISO}${request.configMediaURL ? ` + ${request.configMediaURL}` : ""}`
      : `network boot (${request.networkBootTarget}${request.httpBootURI ? ` ${request.httpBootURI}` : ""})`,
  );
}

function consumerName(host: PhysicalHost): string {
  const ref = host.spec?.consumerRef;
  return ref ? `${ref.kind} ${ref.namespace ?? host.metadata?.namespace}/${ref.name}` : "nobody";
}
