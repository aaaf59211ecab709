"""The machine a benchmark ran on, for its JSON (imported by the bench scripts)."""

import os
import platform
import subprocess


def cpu_model():
    """lscpu's model name, plus family/model/stepping where a hypervisor
    shortens the name (e.g. "AMD EPYC")."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    except OSError:
        return platform.processor() or platform.machine()
    fields = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in out.splitlines())
    )
    name = fields.get("Model name") or platform.processor() or platform.machine()
    details = [
        f"{key.lower()} {fields[key]}"
        for key in ("CPU family", "Model", "Stepping")
        if key in fields
    ]
    if "Hypervisor vendor" in fields:
        details.append(f"{fields['Hypervisor vendor']} guest")
    return f"{name} ({', '.join(details)})" if details else name


def describe():
    """`{"cpu_model", "cpus", "load_average_1min", "platform"}` now."""
    return {
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "platform": platform.platform(),
    }
