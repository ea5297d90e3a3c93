import { html, type SafeHtml } from './html.js'

export interface PageOptions {
  title: string
  body: SafeHtml
  /** A class on `<main>` (the admin console's wider layout). */
  mainClass?: string
  /** Reloads the page after this many seconds (`<meta http-equiv="refresh">`; no script needed). */
  refreshSeconds?: number
}

/** Every page: no inline script or style (the CSP forbids them), assets from /static. */
export function page({ title, body, mainClass, refreshSeconds }: PageOptions): string {
  const refresh =
    refreshSeconds === undefined
      ? html``
      : html`<meta http-equiv="refresh" content="${String(Math.max(1, Math.floor(refreshSeconds)))}">
`
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
${refresh}<title>${title} · Consent Broker</title>
<link rel="stylesheet" href="/static/app.css">
<script src="/static/app.js" defer></script>
</head>
<body>
<header class="top"><a href="/" class="brand">Consent Broker</a></header>
${mainClass === undefined ? html`<main>` : html`<main class="${mainClass}">`}
${body}
</main>
</body>
</html>
`.value
}
