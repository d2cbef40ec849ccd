#!/usr/bin/env node
// The `proxyctl` bin, committed: npm ci links a bin only when its file exists (see apps/cli/bin).
import '../dist/control/proxyctl.js';
