// Package e2e holds the end-to-end voice test with a real browser:
// TestBrowserVoice runs a gateway with voice in the test process and has
// two headless Chromium pages, driven by playwright-core (driver.mjs,
// voice.html), join one voice room through it and exchange audio from
// their fake microphones.
//
// WebRTC in a browser offers candidates from every network interface, so
// the browser part runs only in a network namespace that has nothing but
// lo: the test re-runs itself under `unshare --net` and asserts from each
// page's getStats that media flowed over 127.0.0.1. It needs chromium,
// node and `npm ci` in this directory (.ci/run does both); without them it
// is skipped with one line saying what is missing.
//
// The package has no code besides this file; everything is in the test.
package e2e
