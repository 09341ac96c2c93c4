/**
 * Debian's Chromium (`apt-get install chromium`) and its flags for a headless run here: no sandbox (root), no GPU, no
 * network side-channels. Shared by the dashboard's end-to-end test, its screenshots script and its open-time bench.
 */
export const CHROMIUM_PATH = '/usr/bin/chromium';

export const CHROMIUM_ARGS: readonly string[] = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
