// Composition root of the Beskar7 Pepr module: the runtime configuration is parsed once, and the
// capabilities are handed to Pepr. Nothing else belongs here.
import { Log, PeprModule } from "pepr";

import cfg from "./package.json";
import { capabilities } from "./capabilities";
import { config } from "./capabilities/lib/config";
import { hideWebhookPath } from "./capabilities/lib/hide-webhook-path";
import { takeOverShutdown } from "./capabilities/lib/runtime";
import { startWithWebhookKeepAlive } from "./capabilities/lib/webhook-keep-alive";

// deferStart lets the webhook port come from configuration (operator:local picks a free one);
// in build mode `pepr build` only collects the bindings, so there is no server to start.
const module = new PeprModule(cfg, capabilities, { deferStart: true });
// After start, so the runtime's graceful shutdown (controllers stopped, BMC sessions logged out)
// runs before Pepr's own SIGTERM handler closes the server and exits.
if (process.env.PEPR_MODE !== "build") {
  // Before start: Pepr logs its webhook API path, a credential, as its server starts.
  hideWebhookPath(Log);
  startWithWebhookKeepAlive(() => module.start(config.webhookPort));
  takeOverShutdown();
}
