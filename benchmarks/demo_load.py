"""
Many users at once: the demo as a real server on 127.0.0.1, driven by concurrent `gradio_client` clients, today's app
and a baseline app (an earlier commit's `spaces_demo/app.py`) side by side in one run.

    python benchmarks/demo_load.py --model .cache/demo/gia-mic-starter [--baseline REV] [--clients 10] [--requests 20]

Each client sends its requests one after another, the clients at the same time; the mix per client is 3 speech
requests to 1 image request (15 + 5 of 20): speech transcribed by the app's Whisper, the example face. Prints errors,
throughput (requests/s) and the median and 95th-percentile latency per app, and the ratios.
"""

import argparse
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(app: Path, model: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """`python app.py` on a free port; returns once the page answers (the console goes to `log`)."""
    port = free_port()
    env = {**os.environ, "GIA_MIC_MODEL": str(model), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    with log.open("w") as console:
        process = subprocess.Popen(
            [sys.executable, str(app), "--port", str(port)], cwd=app.parent, env=env, stdout=console, stderr=console
        )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return process, url
        except OSError:
            time.sleep(1)
    process.kill()
    raise TimeoutError("the app did not start within 300 s")


def predict_parameters(client) -> list[str]:
    """The app's `/predict` parameter names (the baseline has no transcription checkbox)."""
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    return [p["parameter_name"] for p in endpoints["/predict"]["parameters"]]


def request_arguments(parameters: list[str], speech: Path | None, image: Path | None) -> list:
    """The `/predict` arguments in the order of the app's `parameters`."""
    from gradio_client import handle_file

    values = {"text": "", "use_speech": True, "video_path": None}
    values["audio_path"] = handle_file(str(speech)) if speech else None
    values["image_path"] = handle_file(str(image)) if image else None
    return [values[name] for name in parameters]


def load(url: str, speech: Path, image: Path, clients: int, requests: int) -> dict:
    """`clients` concurrent clients x `requests` each (3 speech : 1 image); latencies, errors and throughput."""
    from gradio_client import Client

    latencies, errors, lock = [], [], threading.Lock()
    # One TLS context for every request: httpx would build one (reading the CA bundle) per HTTP call, three per
    # request, on the cores the server runs on.
    tls = ssl.create_default_context()

    def client_loop(index: int) -> None:
        client = Client(url, verbose=False, ssl_verify=tls)
        parameters = predict_parameters(client)
        for number in range(requests):
            kind = "image" if number % 4 == 3 else "speech"
            arguments = request_arguments(
                parameters, speech if kind == "speech" else None, image if kind == "image" else None
            )
            start = time.perf_counter()
            try:
                client.predict(*arguments, api_name="/predict")
            except Exception as error:
                with lock:
                    errors.append(f"client {index} request {number}: {error}")
                continue
            with lock:
                latencies.append(time.perf_counter() - start)

    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(index,)) for index in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": clients * requests,
        "errors": errors,
        "throughput": len(latencies) / wall,
        "median_s": statistics.median(ordered) if ordered else float("nan"),
        "p95_s": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else float("nan"),
        "wall_s": wall,
    }


def baseline_app(revision: str, folder: Path) -> Path:
    """The demo app as it was at `revision`, written into `folder`."""
    source = subprocess.run(
        ["git", "show", f"{revision}:spaces_demo/app.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    path = folder / "app.py"
    path.write_text(source)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--model", type=Path, default=ROOT / ".cache" / "demo" / "gia-mic-starter")
    parser.add_argument("--baseline", default=None, help="git revision of the app to compare with (e.g. bd05572)")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    from gia_mic.hub import write_examples

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        media = {path.stem: path for path in write_examples(work / "examples")}
        apps = {"today": ROOT / "spaces_demo" / "app.py"}
        if args.baseline:
            (work / "baseline").mkdir()
            apps = {"baseline": baseline_app(args.baseline, work / "baseline"), **apps}
        results = {}
        for name, app in apps.items():
            process, url = start_server(app, args.model.resolve(), work / f"{name}.log")
            try:
                results[name] = load(url, media["speech"], media["face"], args.clients, args.requests)
            finally:
                process.terminate()
                process.wait(timeout=30)
            if results[name]["errors"]:  # the server's side of the failures
                print(
                    f"--- {name} app console (last 3,000 characters) ---\n{(work / f'{name}.log').read_text()[-3000:]}"
                )
    print(f"{args.clients} clients x {args.requests} requests (3 speech : 1 image)\n")
    print(f"{'app':<10}{'errors':>8}{'req/s':>8}{'median s':>10}{'p95 s':>8}")
    for name, r in results.items():
        print(f"{name:<10}{len(r['errors']):>8}{r['throughput']:>8.2f}{r['median_s']:>10.2f}{r['p95_s']:>8.2f}")
        for error in r["errors"][:3]:
            print(f"    {error}")
    if "baseline" in results:
        base, today = results["baseline"], results["today"]
        print(
            f"\ntoday / baseline: throughput x{today['throughput'] / base['throughput']:.2f}, median latency "
            f"x{today['median_s'] / base['median_s']:.2f}, p95 x{today['p95_s'] / base['p95_s']:.2f}"
        )


if __name__ == "__main__":
    main()
