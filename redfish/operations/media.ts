// Virtual media: find slots (under the system and its manager), pick one by the MediaTypes it
// accepts, insert with the smallest payload the BMC takes, verify, eject.
// QUIRKS rows: All | InsertMedia payload; HPE iLO 5 | VirtualMedia; Lenovo XCC | VirtualMedia;
// Supermicro X11/X12 | VirtualMedia; AMI | VirtualMedia; Cisco UCS | VirtualMedia.
import type { ActionInfo, VirtualMedia } from "../resources/schema";
import {
  BmcRejectedError,
  RedfishError,
  UnsupportedOperationError,
  VerificationError,
} from "../errors";
import { linkPath, stringOf, stringsOf, type ODataLink } from "../resources/common";
import type {
  BmcVendor,
  InsertMediaRequest,
  InsertMediaResult,
  MediaKind,
  VirtualMediaSlot,
} from "../types";
import {
  EJECT_MEDIA_BODY,
  inferredMediaTypes,
  preferSystemVirtualMedia,
  slotAcceptsRemoteImage,
} from "../vendors";
import { type SystemContext, pollUntil, record } from "./context";

interface SlotDetail extends VirtualMediaSlot {
  insertTarget?: string;
  insertActionInfo?: string;
  ejectTarget?: string;
}

/** Collection paths of VirtualMedia linked from the system and from its manager (memoised). */
async function mediaCollections(context: SystemContext): Promise<string[]> {
  return context.memo(MEDIA_COLLECTIONS, async () =>
    mediaCollectionPaths(await context.systemBody(), await context.managerBody()),
  );
}

/** The memo key of a system's VirtualMedia collection paths (readInventory seeds it). */
export const MEDIA_COLLECTIONS = "mediaCollections";

/** The VirtualMedia collections the system and its manager link to. */
export function mediaCollectionPaths(
  system: { VirtualMedia?: unknown },
  manager: { VirtualMedia?: unknown } | undefined,
): string[] {
  const paths: string[] = [];
  const fromSystem = linkPath(system.VirtualMedia as ODataLink);
  if (fromSystem) paths.push(fromSystem);
  const fromManager = linkPath(manager?.VirtualMedia as ODataLink);
  if (fromManager && fromManager !== fromSystem) paths.push(fromManager);
  return paths;
}

/** AMI's literal "None" (any case) for an empty slot's Image. */
function isNoneString(value: unknown): boolean {
  return stringOf(value)?.toLowerCase() === "none";
}

/** An image value that means "nothing": null, "" (or blank), or AMI's literal string "None". */
function imageOf(value: unknown): string | undefined {
  const image = stringOf(value);
  return image && !isNoneString(image) ? image : undefined;
}

export function parseSlot(body: Record<string, unknown>, allow?: string[]): SlotDetail {
  const path = stringOf(body["@odata.id"]) ?? "";
  const actions = record(body.Actions);
  const insert = record(actions?.["#VirtualMedia.InsertMedia"]);
  const eject = record(actions?.["#VirtualMedia.EjectMedia"]);
  const image = imageOf(body.Image);
  const connectedVia = stringOf(body.ConnectedVia);
  // AMI says "None" for an empty slot; Supermicro keeps Image/ImageName after an eject, so a
  // NotConnected slot without Inserted:true is empty whatever Image says.
  let inserted: boolean;
  if (isNoneString(body.Image)) inserted = false;
  else if (typeof body.Inserted === "boolean") inserted = body.Inserted;
  else inserted = image !== undefined && connectedVia !== "NotConnected";
  let insertMethod: VirtualMediaSlot["insertMethod"] = "none";
  if (stringOf(insert?.target)) insertMethod = "action";
  else if (!allow || allow.includes("PATCH")) insertMethod = "patch";
  const id = stringOf(body.Id) ?? path.split("/").pop() ?? "";
  const listed = stringsOf(body.MediaTypes);
  return {
    path,
    id,
    location: /\/systems\//i.test(path) ? "Systems" : "Managers",
    // AMI MegaRAC lists none: inferred from the Id and Name (vendors.ts).
    mediaTypes: listed.length > 0 ? listed : inferredMediaTypes(id, stringOf(body.Name)),
    inserted,
    image: inserted ? (image ?? imageOf(body.ImageName)) : undefined,
    writeProtected: typeof body.WriteProtected === "boolean" ? body.WriteProtected : undefined,
    connectedVia,
    insertMethod,
    insertTarget: stringOf(insert?.target),
    insertActionInfo: stringOf(insert?.["@Redfish.ActionInfo"]),
    ejectTarget: stringOf(eject?.target),
  };
}

/**
 * Whether a slot shows the image that was inserted. BMCs may echo the URL re-encoded or only the
 * file name (ImageName), or show nothing but Inserted:true.
 */
export function sameImage(shown: string | undefined, requested: string): boolean {
  if (shown === undefined || shown === requested) return true;
  const decode = (value: string): string => {
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  };
  if (decode(shown) === decode(requested)) return true;
  const name = decode(requested).split("/").pop();
  return name !== undefined && name.length > 0 && decode(shown).endsWith(name);
}

function publicSlot(slot: SlotDetail): VirtualMediaSlot {
  const { insertTarget: _insert, insertActionInfo: _info, ejectTarget: _eject, ...rest } = slot;
  return rest;
}

async function readSlots(context: SystemContext, collections?: string[]): Promise<SlotDetail[]> {
  const paths = collections ?? (await mediaCollections(context));
  const slots: SlotDetail[] = [];
  const seen = new Set<string>();
  for (const collection of paths) {
    const { members } = await context.client.collectionMembers(collection);
    for (const member of members) {
      const slot = parseSlot(member);
      if (seen.has(slot.path)) continue;
      seen.add(slot.path);
      slots.push(slot);
    }
  }
  return slots;
}

async function readSlot(context: SystemContext, path: string): Promise<SlotDetail> {
  const response = await context.client.get<VirtualMedia>(path);
  return parseSlot(response.body, response.allow);
}

export async function listVirtualMedia(context: SystemContext): Promise<VirtualMediaSlot[]> {
  return (await readSlots(context)).map(publicSlot);
}

/** The media kinds some slot of the system can be loaded with. */
export async function loadableMediaKinds(context: SystemContext): Promise<MediaKind[]> {
  const slots = (await readSlots(context)).filter(slot => slot.insertMethod !== "none");
  return (["cd", "usb"] as const).filter(kind => slots.some(slot => acceptsKind(slot, kind)));
}

function acceptsKind(slot: VirtualMediaSlot, kind: MediaKind): boolean {
  if (kind === "cd") return slot.mediaTypes.some(type => type === "CD" || type === "DVD");
  return slot.mediaTypes.some(type => type === "USBStick" || type === "Floppy");
}

/** Candidate slots for a kind, best first. */
function rankSlots(slots: SlotDetail[], kind: MediaKind, preferSystems: boolean): SlotDetail[] {
  const score = (slot: SlotDetail): number => {
    let value = 0;
    if (kind === "cd") {
      // Prefer CD slots, then DVD-only slots (QUIRKS: All | InsertMedia payload).
      if (!slot.mediaTypes.includes("CD")) value += 4;
    } else {
      // Keep CD-capable slots free for the ISO when a dedicated USB slot exists.
      if (!slot.mediaTypes.includes("USBStick")) value += 4;
      if (acceptsKind(slot, "cd")) value += 2;
    }
    if (preferSystems && slot.location !== "Systems") value += 1;
    return value;
  };
  return slots
    .filter(slot => acceptsKind(slot, kind) && slot.insertMethod !== "none")
    .sort((a, b) => score(a) - score(b));
}

function protocolOf(image: string): string | undefined {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(image)?.[1]?.toUpperCase();
  if (!scheme) return undefined;
  return ["HTTP", "HTTPS", "NFS", "CIFS", "FTP", "SFTP", "TFTP", "SCP"].includes(scheme)
    ? scheme
    : undefined;
}

interface SlotChoice {
  already?: SlotDetail;
  candidates: SlotDetail[];
  error?: RedfishError;
}

function chooseSlots(
  slots: SlotDetail[],
  request: InsertMediaRequest,
  kind: MediaKind,
  vendor: BmcVendor,
): SlotChoice {
  const already = slots.find(slot => slot.inserted && slot.image === request.image);
  if (already) return { already, candidates: [] };
  if (request.slot) {
    const named = slots.find(slot => slot.path === request.slot || slot.id === request.slot);
    if (!named) {
      const ids = slots.map(slot => slot.id).join(", ");
      return {
        candidates: [],
        error: new UnsupportedOperationError(
          `no virtual media slot "${request.slot}" (slots: ${ids})`,
        ),
      };
    }
    return { candidates: [named] };
  }
  const accepting = rankSlots(slots, kind, preferSystemVirtualMedia(vendor)).filter(slot =>
    slotAcceptsRemoteImage(vendor, slot.id),
  );
  if (accepting.length === 0) {
    const label = kind === "cd" ? "CD/DVD" : "USBStick";
    return {
      candidates: [],
      error: new UnsupportedOperationError(
        `the BMC has no virtual media slot accepting ${label} images`,
      ),
    };
  }
  const free = accepting.filter(slot => !slot.inserted);
  if (free.length === 0) {
    return {
      candidates: [],
      error: new BmcRejectedError(`every virtual media slot accepting ${kind} media is occupied`),
    };
  }
  return { candidates: free };
}

export async function insertMedia(
  context: SystemContext,
  request: InsertMediaRequest,
): Promise<InsertMediaResult> {
  const kind = request.kind ?? "cd";
  const vendor = await context.vendor();
  const collections = await mediaCollections(context);
  // The system's own collection first; the manager's is read only when that has no usable slot
  // (saves a collection and its members on Dell and Lenovo, which list slots in both places).
  let choice = chooseSlots(
    await readSlots(context, request.slot ? collections : collections.slice(0, 1)),
    request,
    kind,
    vendor,
  );
  if (choice.error && !request.slot && collections.length > 1) {
    choice = chooseSlots(await readSlots(context, collections), request, kind, vendor);
  }
  if (choice.already) {
    return { slot: publicSlot(choice.already), parametersSent: [], alreadyInserted: true };
  }
  if (choice.error) throw choice.error;
  const candidates = choice.candidates;

  let lastError: unknown;
  for (const slot of candidates) {
    try {
      const parametersSent =
        slot.insertMethod === "action"
          ? await insertByAction(context, slot, request)
          : await insertByPatch(context, slot, request);
      const verified = await verifySlot(context, slot.path, current =>
        current.inserted && sameImage(current.image, request.image) ? current : undefined,
      );
      if (!verified) {
        throw new VerificationError(`${slot.path} does not show ${request.image} as inserted`);
      }
      return { slot: publicSlot(verified), parametersSent };
    } catch (error) {
      lastError = error;
      // Some slots are internal or broken (Cisco vKVM devices, OpenBMC slots answering 405):
      // a plain rejection moves on to the next candidate.
      const movable =
        error instanceof RedfishError &&
        (error.code === "Rejected" || error.code === "Unsupported") &&
        !error.retryable;
      if (!movable || request.slot) throw error;
      context.client.logger?.warn("virtual media slot refused the image; trying the next slot", {
        slot: slot.path,
        status: error.status,
      });
    }
  }
  throw lastError;
}

interface ParameterProblem {
  ids: RegExp;
  text: RegExp;
}
const PARAMETER_MISSING: ParameterProblem = {
  ids: /ActionParameterMissing|PropertyMissing|ParameterMissing/,
  text: /\b(missing|required|mandatory)\b/i,
};
const PARAMETER_UNKNOWN: ParameterProblem = {
  ids: /ActionParameterUnknown|PropertyUnknown|ActionParameterNotSupported|PropertyNotWritable/,
  text: /not in the list of valid properties|not supported|unknown/i,
};

async function insertByAction(
  context: SystemContext,
  slot: SlotDetail,
  request: InsertMediaRequest,
): Promise<string[]> {
  const target = slot.insertTarget;
  if (!target) throw new UnsupportedOperationError(`${slot.path} has no InsertMedia action`);
  const payload: Record<string, unknown> = { Image: request.image };
  if (request.writeProtected === false) payload.WriteProtected = false;

  // ActionInfo, where offered, names required parameters up front (Supermicro X13, AMI).
  if (slot.insertActionInfo) {
    const info = await context.memo(
      `actionInfo:${slot.insertActionInfo}`,
      async () => (await context.client.get<ActionInfo>(slot.insertActionInfo ?? "")).body,
    );
    const parameters = Array.isArray(info.Parameters) ? info.Parameters : [];
    for (const parameter of parameters.map(record)) {
      const name = stringOf(parameter?.Name);
      if (name && parameter?.Required === true && !(name in payload)) {
        addParameter(payload, name, request);
      }
    }
  }

  const secrets = request.imageCredentials ? [request.imageCredentials.password] : [];
  for (let attempt = 0; attempt < 5; attempt += 1) {
    try {
      await context.client.post(target, payload, { context: "insertMedia", secrets });
      return Object.keys(payload);
    } catch (error) {
      if (!(error instanceof RedfishError) || error.status !== 400) throw error;
      const missing = namedParameters(error, PARAMETER_MISSING).filter(name => !(name in payload));
      const unknown = namedParameters(error, PARAMETER_UNKNOWN).filter(
        name => name in payload && name !== "Image",
      );
      if (missing.length === 0 && unknown.length === 0) throw error;
      for (const name of unknown) delete payload[name];
      for (const name of missing) {
        if (!addParameter(payload, name, request)) throw error;
      }
    }
  }
  throw new BmcRejectedError(`InsertMedia on ${slot.path} kept asking for more parameters`);
}

/** Parameter names an error's MessageArgs (or message text) mentions for a family of ids. */
function namedParameters(error: RedfishError, family: ParameterProblem): string[] {
  const known = [
    "TransferProtocolType",
    "TransferMethod",
    "UserName",
    "Password",
    "Inserted",
    "WriteProtected",
  ];
  const names = new Set<string>();
  for (const info of error.extendedInfo) {
    // Some services say it only in prose under a GeneralError (sushy samples, Supermicro X11).
    const matches =
      (info.messageId !== undefined && family.ids.test(info.messageId)) ||
      (info.message !== undefined && family.text.test(info.message));
    if (!matches) continue;
    for (const name of known) {
      const inArgs = info.messageArgs?.some(arg => arg.includes(name));
      if (inArgs || info.message?.includes(name)) names.add(name);
    }
  }
  return [...names];
}

/** Adds a parameter the BMC asked for; false when we have no value for it. */
function addParameter(
  payload: Record<string, unknown>,
  name: string,
  request: InsertMediaRequest,
): boolean {
  switch (name) {
    case "TransferProtocolType": {
      const protocol = protocolOf(request.image);
      if (!protocol) return false;
      payload.TransferProtocolType = protocol;
      return true;
    }
    case "TransferMethod":
      payload.TransferMethod = "Stream";
      return true;
    case "UserName":
    case "Password":
      if (!request.imageCredentials) return false;
      payload.UserName = request.imageCredentials.username;
      payload.Password = request.imageCredentials.password;
      return true;
    case "Inserted":
      payload.Inserted = true;
      return true;
    case "WriteProtected":
      payload.WriteProtected = request.writeProtected ?? true;
      return true;
    default:
      return false;
  }
}

/** QUIRKS: Lenovo XCC | VirtualMedia — no actions; PATCH {Image, Inserted, WriteProtected}. */
async function insertByPatch(
  context: SystemContext,
  slot: SlotDetail,
  request: InsertMediaRequest,
): Promise<string[]> {
  const payload: Record<string, unknown> = {
    Image: request.image,
    Inserted: true,
    WriteProtected: request.writeProtected ?? true,
  };
  if (request.imageCredentials) {
    payload.UserName = request.imageCredentials.username;
    payload.Password = request.imageCredentials.password;
  }
  await context.client.patch(slot.path, payload, {
    context: "insertMedia",
    secrets: request.imageCredentials ? [request.imageCredentials.password] : [],
  });
  return Object.keys(payload);
}

async function verifySlot(
  context: SystemContext,
  path: string,
  check: (slot: SlotDetail) => SlotDetail | undefined,
): Promise<SlotDetail | undefined> {
  const { verifyTimeoutMs, verifyPollIntervalMs } = context.client.settings;
  return pollUntil(
    async () => check(await readSlot(context, path)),
    verifyTimeoutMs,
    verifyPollIntervalMs,
  );
}

export async function ejectMedia(
  context: SystemContext,
  target: { slot?: string; kind?: MediaKind } = {},
): Promise<VirtualMediaSlot[]> {
  const slots = await readSlots(context);
  let chosen: SlotDetail[];
  if (target.slot) {
    const named = slots.find(slot => slot.path === target.slot || slot.id === target.slot);
    if (!named) throw new UnsupportedOperationError(`no virtual media slot "${target.slot}"`);
    chosen = named.inserted ? [named] : [];
  } else {
    chosen = slots.filter(
      slot => slot.inserted && (!target.kind || acceptsKind(slot, target.kind)),
    );
  }
  const ejected: VirtualMediaSlot[] = [];
  for (const slot of chosen) {
    await ejectSlot(context, slot);
    // Dell keeps Inserted:true for a moment after an eject (QUIRKS: Dell | insert/eject timing).
    const verified = await verifySlot(context, slot.path, current =>
      current.inserted ? undefined : current,
    );
    if (!verified) throw new VerificationError(`${slot.path} still shows media after eject`);
    ejected.push(publicSlot(verified));
  }
  return ejected;
}

/**
 * Ejects one slot: the advertised EjectMedia action; else, for slots that list only InsertMedia
 * (Supermicro X13 before a mount shows up in its Actions), the sibling EjectMedia action next to
 * the advertised InsertMedia target; else a PATCH of the slot (Lenovo).
 */
async function ejectSlot(context: SystemContext, slot: SlotDetail): Promise<void> {
  if (slot.ejectTarget) {
    await context.client.post(slot.ejectTarget, EJECT_MEDIA_BODY);
    return;
  }
  const sibling = slot.insertTarget?.replace(/InsertMedia$/, "EjectMedia");
  if (sibling && sibling !== slot.insertTarget) {
    try {
      await context.client.post(sibling, EJECT_MEDIA_BODY);
      return;
    } catch (error) {
      const absent =
        error instanceof RedfishError &&
        (error.code === "NotFound" || error.code === "Unsupported");
      if (!absent) throw error;
    }
  }
  await context.client.patch(slot.path, { Image: null, Inserted: false });
}
