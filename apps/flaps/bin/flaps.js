#!/usr/bin/env node
// The `flaps` bin, committed: npm ci links a bin only when its file exists (see apps/cli/bin).
import '../dist/main.js';
