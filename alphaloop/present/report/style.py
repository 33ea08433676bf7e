"""The report's inline stylesheet (the report is one self-contained file)."""

from __future__ import annotations

CSS = """
*{box-sizing:border-box}
body{margin:0;background:#f4f5f7;color:#1d2330;
font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1160px;margin:0 auto;padding:20px 24px 60px}
header,section{background:#fff;border:1px solid #e1e4ea;border-radius:10px;padding:18px 22px;margin:16px 0}
h1{margin:0;font-size:24px}h2{margin:0 0 6px;font-size:19px}h3{font-size:15px;margin:18px 0 6px}
.sub,.lead{color:#5b6475;margin:2px 0 12px}
nav{position:sticky;top:0;z-index:2;background:#1d2330;padding:8px 24px;display:flex;flex-wrap:wrap;gap:4px 16px}
nav a{color:#dfe6f3;text-decoration:none;font-size:13px}nav a:hover{color:#fff;text-decoration:underline}
.cards{display:grid;grid-template-columns:repeat(6,1fr);gap:10px;margin:14px 0}
.card{border:1px solid #e1e4ea;border-radius:8px;padding:10px 12px;background:#fafbfc}
.card .k{font-size:12px;color:#5b6475;text-transform:uppercase;letter-spacing:.03em}
.card .v{font-size:22px;font-weight:600;margin:2px 0}.card .s{font-size:12px;color:#5b6475}
.best{margin:6px 0 12px}.assume{color:#5b6475;font-size:12px;margin:0 0 12px}
pre.code{background:#fafbfc;border:1px solid #eceef2;border-radius:8px;padding:10px 14px;overflow:auto;max-height:520px;
font:12px/1.45 ui-monospace,Menlo,Consolas,monospace}pre.code code{background:none;padding:0}
.hl .k,.hl .kn,.hl .kd,.hl .kc,.hl .ow{color:#8959a8;font-weight:600}.hl .nf{color:#1f5fa8}
.hl .nb,.hl .bp{color:#3e8e9e}
.hl .s,.hl .s1,.hl .s2,.hl .sd,.hl .si,.hl .sa{color:#18794e}.hl .mi,.hl .mf,.hl .m{color:#b45f06}
.hl .c,.hl .c1,.hl .ch,.hl .cm{color:#8a93a3;font-style:italic}.hl .o{color:#5b6475}
.facts{display:grid;grid-template-columns:3fr 2fr;gap:18px;align-items:start}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:13px}
th,td{padding:5px 8px;border-bottom:1px solid #eceef2;text-align:left;vertical-align:top}
thead th{background:#f0f2f6;font-weight:600;position:sticky;top:0}
table.compact td,table.compact th{padding:4px 7px}
table.kv th{width:110px;color:#5b6475;font-weight:500;background:none}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.text{max-width:520px}td.mono{font-family:ui-monospace,Menlo,Consolas,monospace}
.pos{color:#18794e}.neg{color:#c0392b}.dim{color:#8a93a3}
.badge{display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;background:#eef0f4;white-space:nowrap}
.badge.top{background:#d8f0e0;color:#18794e}.badge.accepted{background:#e3ecf9;color:#1f5fa8}
.badge.rejected{background:#fbe4e1;color:#a93226}.badge.held{background:#d8f0e0;color:#18794e}
.badge.nothold{background:#fbe4e1;color:#a93226}.badge.ungraded{background:#eef0f4;color:#5b6475}
figure{margin:10px 0}figure img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{font-size:12px;color:#5b6475;text-align:center;margin-top:2px}
.note,.muted{color:#5b6475;font-style:italic}.warn{color:#8a5a00;background:#fff6e0;padding:6px 10px;border-radius:6px}
.verdict{padding:8px 12px;border-radius:8px;margin:6px 0}.verdict.ok{background:#e4f5ea}.verdict.no{background:#fff3dc}
.scroll{max-height:460px;overflow:auto;border:1px solid #eceef2;border-radius:6px}
.scroll table{margin:0}
details summary{cursor:pointer;color:#1f5fa8;margin:8px 0}
.hit .big{font-size:22px;font-weight:600;margin-right:6px}
.md{background:#fafbfc;border:1px solid #eceef2;border-radius:8px;padding:4px 16px;max-height:640px;overflow:auto}
.md h3{font-size:16px}.md h4{font-size:14px;margin:14px 0 4px}.md h5{font-size:13px;margin:10px 0 2px}
.md ul{margin:2px 0 8px;padding-left:20px}
code{font-family:ui-monospace,Menlo,Consolas,monospace;background:#eef0f4;padding:0 3px;border-radius:3px}
footer{color:#8a93a3;font-size:12px;text-align:center}
@media (max-width:900px){.cards{grid-template-columns:repeat(2,1fr)}.facts{grid-template-columns:1fr}}
"""
