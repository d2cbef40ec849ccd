#!/usr/bin/env node
// The `fleet-wan` bin, committed: npm ci links a bin only when its file exists (see apps/cli/bin).
import '../dist/wan/cli.js';
