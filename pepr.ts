// Composition root of the Beskar7 Pepr module: the runtime configuration is parsed once, and the
// capabilities are handed to Pepr. Nothing else belongs here.
import { PeprModule } from "pepr";

import cfg from "./package.json";
import { capabilities } from "./capabilities";
import { config } from "./capabilities/lib/config";

// deferStart lets the webhook port come from configuration (operator:local picks a free one);
// in build mode `pepr build` only collects the bindings, so there is no server to start.
const module = new PeprModule(cfg, capabilities, { deferStart: true });
if (process.env.PEPR_MODE !== "build") module.start(config.webhookPort);
