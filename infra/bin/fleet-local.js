#!/usr/bin/env node
// The `fleet-local` bin, committed: npm ci links a bin only when its file exists (see apps/cli/bin).
import '../dist/launcher/main.js';
