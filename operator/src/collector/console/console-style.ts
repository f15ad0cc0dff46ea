/**
 * The console's only stylesheet, served from the package itself (no CDN, no web fonts). A module
 * rather than a .css file so the build (tsc) ships it without a copy step.
 */
export const CONSOLE_CSS = `
:root { --fg: #1d232a; --muted: #5b6670; --line: #d5dbe1; --bg: #f7f8fa; --accent: #1f5fa8;
  --ok: #1c7a3d; --bad: #b3261e; --warn: #8a5a00; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: center; gap: 1.5rem; padding: .6rem 1.2rem; background: #fff; border-bottom: 1px solid var(--line); flex-wrap: wrap; }
.brand { font-weight: 600; color: var(--fg); text-decoration: none; }
nav { display: flex; gap: 1rem; flex: 1; }
nav a { color: var(--accent); text-decoration: none; padding: .2rem 0; }
nav a[aria-current="page"] { border-bottom: 2px solid var(--accent); font-weight: 600; }
.who { display: flex; align-items: center; gap: .6rem; color: var(--muted); }
main { padding: 1rem 1.2rem 3rem; }
h1 { font-size: 1.35rem; margin: .2rem 0 1rem; }
h2 { font-size: 1.05rem; margin: 1.4rem 0 .5rem; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem; border-bottom: 1px solid var(--line); }
th { background: #eef1f4; font-weight: 600; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code { font: 12.5px/1.4 ui-monospace, "SFMono-Regular", Menlo, monospace; word-break: break-word; }
.sql code, code.sql { white-space: pre-wrap; }
.badge { display: inline-block; padding: 0 .4rem; border-radius: .6rem; font-size: 12px; background: #e6e9ed; }
.badge.ok, .badge.clear, .badge.phase-Approved, .badge.phase-Executed { background: #dcefe2; color: var(--ok); }
.badge.refused, .badge.error, .badge.broken, .badge.phase-Denied { background: #f6dcda; color: var(--bad); }
.badge.masked, .badge.phase-Pending, .badge.open { background: #f5ead2; color: var(--warn); }
ul.touched { list-style: none; margin: 0; padding: 0; }
form.filters { display: flex; flex-wrap: wrap; gap: .5rem .8rem; align-items: flex-end; margin-bottom: 1rem; }
label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: .15rem; }
input, select, textarea { font: inherit; padding: .25rem .4rem; border: 1px solid var(--line); border-radius: .25rem; background: #fff; color: var(--fg); }
textarea { min-width: 24rem; min-height: 3.5rem; }
button { font: inherit; padding: .3rem .8rem; border: 1px solid var(--accent); border-radius: .25rem; background: var(--accent); color: #fff; cursor: pointer; }
.who button { background: #fff; color: var(--accent); }
button.deny { background: var(--bad); border-color: var(--bad); }
form.sign-in { background: #fff; border: 1px solid var(--line); padding: 1rem; max-width: 28rem; margin-bottom: 1rem; display: flex; flex-direction: column; gap: .6rem; }
form.decide { display: flex; gap: .6rem; align-items: flex-end; flex-wrap: wrap; }
section.approval { background: #fff; border: 1px solid var(--line); padding: .6rem 1rem; margin-bottom: .8rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .4rem 0; }
dt { color: var(--muted); }
dd { margin: 0; }
.problem { color: var(--bad); background: #fbeceb; border: 1px solid #efc5c1; padding: .5rem .8rem; }
.notice { background: #eaf3ea; border: 1px solid #c7dfc9; padding: .5rem .8rem; }
.hint, .empty { color: var(--muted); }
`;
