#!/usr/bin/env node
import { main } from './cli.js'

const { code, serving } = await main(process.argv.slice(2))
// Every command but `serve` exits with its status, even if a driver left a handle open.
if (!serving) process.exit(code)
