#!/usr/bin/env node
// Entry point for the installed `mandate` command. Mandate runs its TypeScript sources directly on
// Node.js 24 (type stripping), so there is no build step to forget.
import '../src/cli/main.ts';
