#!/usr/bin/env node
// The `fly-proxy-watchdog` bin, committed: npm ci links a bin only when its file exists (see apps/cli/bin).
import '../dist/watchdog/main.js';
