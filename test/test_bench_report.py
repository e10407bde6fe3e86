"""bench/results/bench.md is rendered from bench.json by run_all.report: the stored
results still render, every section the JSON holds has its heading."""
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"


def test_the_stored_results_render_every_section():
    results = json.loads((BENCH / "results" / "bench.json").read_text())
    sys.path.insert(0, str(BENCH))   # run_all imports its sections' modules as the bench does
    try:
        import run_all
        md = run_all.report(results)
    finally:
        sys.path.remove(str(BENCH))
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    for number in ("1.", "2.", "3.", "4.", "5."):
        assert any(h.startswith("## " + number) for h in headings), number
    if "ros" in results:
        assert "## 6. ROS round trip" in md
    if "world" in results:
        assert any(h.startswith("## 13. The robot's world") for h in headings)
    assert md.count("| ") > 50 and "nan" not in md.lower().replace("nanosecond", "")
