// Stylesheet and script for every page, kept as modules so the build needs no copy step.

export const APP_CSS = `:root { color-scheme: light dark; --accent: #2563eb; --muted: #6b7280; --border: #d1d5db; --bg-card: rgba(127,127,127,.06); }
* { box-sizing: border-box; }
body { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; }
header.top { padding: .75rem 1.5rem; border-bottom: 1px solid var(--border); }
header.top .brand { font-weight: 600; text-decoration: none; color: inherit; }
main { max-width: 60rem; margin: 2rem auto; padding: 0 1.5rem; }
h1 { font-size: 1.6rem; margin: 0 0 1rem; }
h2 { font-size: 1.2rem; margin: 1.5rem 0 .5rem; }
.card { border: 1px solid var(--border); border-radius: .5rem; padding: 1.25rem 1.5rem; margin-bottom: 1.25rem; background: var(--bg-card); }
.card.error { border-color: #dc2626; }
.card.success { border-color: #16a34a; }
.muted { color: var(--muted); font-size: .9rem; }
.badge { display: inline-block; font-size: .8rem; padding: .1rem .5rem; border-radius: 1rem; border: 1px solid var(--border); }
ul.apps { list-style: none; padding: 0; }
ul.apps li { margin-bottom: 1rem; }
code.app-name { font-size: .8rem; color: var(--muted); margin-left: .25rem; }
p.integrations { margin: .4rem 0 .2rem; }
form.search { margin: 1rem 0 1.5rem; }
form.search input[type=search] { font: inherit; padding: .4rem .5rem; border-radius: .3rem; border: 1px solid var(--border); width: min(28rem, 100%); margin: .25rem .5rem .25rem 0; }
nav.groups ul { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .5rem 1.25rem; }
ul.resource-groups { margin: 0; padding-left: 1rem; }
code.command { display: block; padding: .5rem .6rem; border: 1px solid var(--border); border-radius: .3rem; word-break: break-all; margin-top: .25rem; }
section.group h2 { border-bottom: 1px solid var(--border); padding-bottom: .25rem; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; }
.table-scroll { overflow-x: auto; }
th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid var(--border); vertical-align: top; }
button, .button { font: inherit; padding: .55rem 1.1rem; border-radius: .4rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; text-decoration: none; display: inline-block; }
button.secondary { background: transparent; color: var(--accent); }
select, input[type=text], input[type=password] { font: inherit; padding: .4rem .5rem; border-radius: .3rem; border: 1px solid var(--border); }
.value { display: flex; gap: .5rem; align-items: center; margin: .25rem 0 1rem; }
.value code { flex: 1; padding: .5rem .6rem; border: 1px solid var(--border); border-radius: .3rem; word-break: break-all; font-size: .95rem; }
ol.steps li { margin-bottom: .4rem; }
h3 { font-size: 1rem; margin: 1rem 0 .25rem; }
label { font-weight: 600; }
.value button { white-space: nowrap; }
code.provider-message { word-break: break-word; }
.card.error h1 { color: #b91c1c; }
@media (prefers-color-scheme: dark) { .card.error h1 { color: #f87171; } }
button.danger, .button.danger { background: #dc2626; border-color: #dc2626; color: #fff; }
main.console { max-width: 80rem; }
main.console .button.secondary { background: transparent; color: var(--accent); }
main.console .table-card { padding: .5rem .75rem; }
main.console td { overflow-wrap: break-word; }
main.console td code, main.console .upn { overflow-wrap: anywhere; }
main.console .nowrap { white-space: nowrap; }
main.console td.number { text-align: right; }
main.console time, main.console .short-id, main.console .badge, main.console td.number { white-space: nowrap; }
main.console .tenant-label { display: inline-block; max-width: 14rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; vertical-align: bottom; }
main.console code.full-id, main.console .wrap, main.console td.detail { overflow-wrap: anywhere; word-break: break-word; }
main.console table.details th { width: 12rem; }
button.copy[hidden] { display: none; }
button.copy { font-size: .72rem; padding: 0 .35rem; margin-left: .3rem; border-radius: .25rem; background: transparent; color: var(--accent); vertical-align: baseline; }
ul.attention { padding-left: 1.2rem; }
.counts { display: flex; flex-wrap: wrap; gap: 1rem; margin-bottom: 1.25rem; }
.counts .card { flex: 1 1 10rem; margin: 0; }
.counts .count { font-size: 1.8rem; font-weight: 600; display: block; }
`

export const APP_JS = `'use strict';
// Copy buttons: <button data-copy="x"> copies the text of [data-field="x"]. Where the Clipboard API
// is unavailable (plain http), the text is selected so the user can copy it by hand.
function selectText(element) {
  var range = document.createRange();
  range.selectNodeContents(element);
  var selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}
function flash(button, text) {
  var label = button.getAttribute('data-label') || button.textContent;
  button.setAttribute('data-label', label);
  button.textContent = text;
  setTimeout(function () { button.textContent = label; }, 1500);
}
document.addEventListener('click', function (event) {
  var button = event.target.closest('button[data-copy]');
  if (!button) return;
  var source = document.querySelector('[data-field="' + button.getAttribute('data-copy') + '"]');
  if (!source) return;
  var text = source.textContent.trim();
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(
      function () { flash(button, 'Copied'); },
      function () { selectText(source); flash(button, 'Press Ctrl+C'); }
    );
  } else {
    selectText(source);
    flash(button, 'Press Ctrl+C');
  }
});
// Console copy buttons: <button data-copy-text="value" hidden> copies its value (a full id shown
// shortened). They are hidden in the HTML and shown here, so without JavaScript there is no button
// that does nothing (the full value is in the element's title and on its own page).
document.querySelectorAll('button[data-copy-text]').forEach(function (button) { button.hidden = false; });
document.addEventListener('click', function (event) {
  var button = event.target.closest('button[data-copy-text]');
  if (!button) return;
  var text = button.getAttribute('data-copy-text');
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(
      function () { flash(button, 'Copied'); },
      function () { window.prompt('Copy with Ctrl+C', text); }
    );
  } else {
    window.prompt('Copy with Ctrl+C', text);
  }
});
`
