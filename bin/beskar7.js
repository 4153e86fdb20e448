#!/usr/bin/env node
// Entry point for `npx beskar7`: registers tsx so the TypeScript CLI runs without a build step.
"use strict";
require("tsx/cjs");
const { main } = require("../redfish/cli.ts");
main(process.argv.slice(2));
