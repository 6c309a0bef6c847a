"""The key map: shown by ``?`` and copied into the README (``tui/KEYS.md`` is generated from it)."""

from __future__ import annotations

KEYS_MARKDOWN = """\
### Keys

| Where | Key | Does |
| --- | --- | --- |
| everywhere | `1` … `7` | Overview, Timeline, Steps, Tools, Memory, Checkpoints, Resources |
| everywhere | `ctrl+p` | command palette (every screen and action) |
| everywhere | `?` | this help |
| everywhere | `q` | quit |
| live | `d` | dump now: the recorder writes a `.frec` in its dump directory; the app says where |
| process gone | `ctrl+r` | recover the ring into a dump, in the same directory as `d`'s, and open it |
| Overview | `enter` | show a finding's events in the timeline |
| Timeline | `↑` `↓` `pgup` `pgdn` `home` `end` (`j` `k` `g` `G`) | move |
| Timeline | `enter` | the event's payload (Detail) |
| Timeline | `/` then `n` / `N` | search, next / previous match |
| Timeline | `e` / `E` | next / previous error |
| Timeline | `F` / `x` | filter by kind, thread, tool, text, errors only / clear the filter |
| Timeline | `f` | follow the newest events (live) |
| Detail | `enter` `space` / `+` `-` | open or close a branch / all |
| Detail | `escape` | back |
| Steps | `enter` | show the step's events in the timeline |
| Tools | `enter` | list the tool's calls; on a call, show it in the timeline |
| Memory | `←` `→` (`[` `]` by 10) | move along the context plot, one sample at a time; live items follow |
| Checkpoints | `a` / `b` | pick the two checkpoints to diff |
| Start | `enter` / `r` | open the recorder or dump / refresh the list |
| opened from Start | `backspace` | back to the list |
"""
