// The credentials and address policy through the real API server and the real operator (issue 13):
// - at LOG_LEVEL=debug, a BMC password (and its base64 and Basic forms) appears in no log line,
//   through enrollment and a password change that the Secret watch picks up;
// - a host whose credentials Secret lacks the bmc-credentials label is refused with a condition
//   naming the label, the operator never labels the Secret, and adding the label enrolls the host
//   promptly (the metadata watch re-queues the waiting host);
// - admission refuses refused BMC addresses, naming the field and the setting;
// - a host in a namespace the webhooks skip (kube-system) is not acted on (NamespaceIgnored).
import { K8s, kind } from "kubernetes-fluent-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { Labels, PhysicalHost } from "../../../capabilities/api";
import { TestBmc } from "../../../lab/bmc/server";
import { createNamespace, eventually, rejection } from "../support/kube";
import { startOperator, type Operator } from "../support/operator";

const getHost = (namespace: string, name: string) =>
  K8s(PhysicalHost).InNamespace(namespace).Get(name);
const inState = (state: string) => (h: PhysicalHost) => h.status?.state === state;
async function waitForHost(
  namespace: string,
  name: string,
  predicate: (h: PhysicalHost) => boolean,
  what: string,
  timeoutMs = 60_000,
): Promise<PhysicalHost> {
  return eventually(
    async () => {
      const h = await getHost(namespace, name);
      return predicate(h) && h;
    },
    `${namespace}/${name}: ${what}`,
    timeoutMs,
  );
}

const CANARY = "canary-Pw-7f3a9c51e2";
const CANARY_2 = "canary-Pw-2d8b44a0c6";
const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("credentials and addresses (real operator, LOG_LEVEL=debug)", () => {
  let operator: Operator;
  let ns: string;
  const bmcs: TestBmc[] = [];

  beforeAll(async () => {
    operator = await startOperator({ LOG_LEVEL: "debug" });
    ns = await createNamespace("hardening-creds");
  }, 180_000);
  afterAll(async () => {
    await operator?.stop();
    await Promise.all(bmcs.map(b => b.stop()));
    await K8s(PhysicalHost)
      .InNamespace("kube-system")
      .Delete("skipped")
      .catch(() => undefined);
  });

  async function host(name: string, bmc: TestBmc, secret: string, namespace = ns) {
    await K8s(PhysicalHost).Apply(
      {
        metadata: { name, namespace },
        spec: {
          redfishConnection: {
            address: bmc.url,
            credentialsSecretRef: secret,
            allowInsecureHTTP: true,
          },
        },
      },
      { force: true },
    );
  }

  async function secret(name: string, bmc: TestBmc, password: string, labelled: boolean) {
    await K8s(kind.Secret).Apply(
      {
        metadata: {
          name,
          namespace: ns,
          ...(labelled ? { labels: { [Labels.bmcCredentials]: "true" } } : {}),
        },
        stringData: { username: bmc.username, password },
      },
      { force: true },
    );
  }

  it("refuses an unlabelled Secret with a condition naming the label, and enrolls once it is labelled", async () => {
    const bmc = await TestBmc.start({
      mockup: "dmtf_public-rackmount1",
      password: CANARY,
      tls: false,
    });
    bmcs.push(bmc);
    await secret("unlabelled-bmc", bmc, CANARY, false);
    await host("unlabelled", bmc, "unlabelled-bmc");
    const refused = await waitForHost(
      ns,
      "unlabelled",
      h => h.status?.errorReason === "SecretNotLabelled",
      "SecretNotLabelled",
    );
    const credentials = refused.status?.conditions?.find(c => c.type === "CredentialsValid");
    expect(credentials).toMatchObject({ status: "False", reason: "SecretNotLabelled" });
    expect(credentials?.message).toContain(`add the label ${Labels.bmcCredentials}=true`);
    expect(bmc.requests.count()).toBe(0);
    const stored = await K8s(kind.Secret).InNamespace(ns).Get("unlabelled-bmc");
    expect(stored.metadata?.labels?.[Labels.bmcCredentials]).toBeUndefined();

    const labelledAt = Date.now();
    await secret("unlabelled-bmc", bmc, CANARY, true);
    await waitForHost(ns, "unlabelled", inState("Available"), "Available after labelling", 30_000);
    // The watch re-queued it: well within the host's error backoff (FAST_ENV caps it at 2 s, so
    // this also bounds what the watch adds to that).
    console.log(`labelled -> Available in ${Date.now() - labelledAt} ms`);
  });

  it("keeps the password out of every log line at debug level, through password changes", async () => {
    const bmc = bmcs[0]!;
    // A wrong password, then the right one again: both changes reach the host through the watch.
    await secret("unlabelled-bmc", bmc, CANARY_2, true);
    await waitForHost(
      ns,
      "unlabelled",
      h => h.status?.errorReason === "AuthenticationFailed",
      "AuthenticationFailed with the wrong password",
      30_000,
    );
    await secret("unlabelled-bmc", bmc, CANARY, true);
    await waitForHost(
      ns,
      "unlabelled",
      h => h.status?.state === "Available" && !h.status?.errorReason,
      "Available with the right password again",
      30_000,
    );
    const output = operator.output();
    const lines = output.split("\n");
    expect(lines.filter(l => /"level":20\b/.test(l)).length).toBeGreaterThan(0); // debug lines
    const forms = [CANARY, CANARY_2].flatMap(p => [
      p,
      b64(p),
      b64(`${bmc.username}:${p}`),
      encodeURIComponent(p),
    ]);
    const hits = lines.filter(line => forms.some(form => line.includes(form)));
    console.log(`operator log lines: ${lines.length}, lines with a password form: ${hits.length}`);
    expect(hits).toEqual([]);
  });

  it.each([
    ["https://169.254.169.254", "link-local"],
    ["https://kubernetes.default.svc", "service"],
    ["https://0.0.0.0:8443", "unspecified"],
  ])("admission refuses the BMC address %s (%s)", async (address, cls) => {
    const { status, message } = await rejection(
      K8s(PhysicalHost).Apply({
        metadata: { name: `refused-${cls}`, namespace: ns },
        spec: { redfishConnection: { address, credentialsSecretRef: "x" } },
      }),
    );
    expect(status).toBe(422);
    expect(message).toContain("spec.redfishConnection.address");
    expect(message).toContain(`BESKAR7_ALLOW_BMC_ADDRESSES=${cls}`);
  });

  it("does not act on a host in kube-system, which admission never saw", async () => {
    // A BMC of its own: the earlier tests' hosts keep polling theirs.
    const bmc = await TestBmc.start({
      mockup: "dmtf_public-rackmount1",
      password: CANARY,
      tls: false,
    });
    bmcs.push(bmc);
    const before = bmc.requests.count();
    await host("skipped", bmc, "any", "kube-system");
    const skipped = await waitForHost(
      "kube-system",
      "skipped",
      h => h.status?.errorReason === "NamespaceIgnored",
      "NamespaceIgnored",
    );
    expect(skipped.status?.errorMessage).toContain("namespace kube-system is skipped");
    expect(bmc.requests.count()).toBe(before);
    await eventually(async () => (await getHost("kube-system", "skipped")).status?.state, "state");
  });
});
