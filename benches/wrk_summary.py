"""Reads a `wrk --latency` report and prints `rps p50_ms p99_ms errors` on one
line (errors: socket errors plus non-2xx/3xx answers). Shared by the load
benchmarks."""
import re
import sys

text = open(sys.argv[1]).read()


def ms(label):
    m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\b", text, re.M)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
errors = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", text))
m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors += int(m.group(1)) if m else 0
print(f"{rps:.0f} {ms('50%'):.3f} {ms('99%'):.3f} {errors}")
