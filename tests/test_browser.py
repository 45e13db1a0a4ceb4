"""Drive the widgets chapter in a real browser.

Voilà serves `nbs/12_widgets.ipynb` on 127.0.0.1 (it runs the chapter in a kernel, IN_TEST=1),
headless Chromium (Debian's `chromium`, driven by Playwright) opens the page, and for each of
the four widgets the test changes one control in the page and checks that the plotly figure in
the page changed accordingly. Where Chromium, Playwright or Voilà is missing the test is skipped
with a message saying what to install; it never passes without a browser.
"""
import os, re, shutil, signal, socket, subprocess, sys, tempfile, time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = ROOT / "nbs" / "12_widgets.ipynb"
CHROMIUM = next((p for p in (os.environ.get("CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                             "/usr/bin/chromium") if p and Path(p).exists()), None)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 # a loaded machine must not make Chromium slow the page's timers and websockets down
                 "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                 "--disable-backgrounding-occluded-windows"]


def _missing() -> str | None:
    if CHROMIUM is None: return "Chromium is not installed (Debian: apt-get install -y chromium)"
    for mod, pkg in (("playwright", "playwright"), ("voila", "voila")):
        try: __import__(mod)
        except ImportError: return f"{pkg} is not installed (pip install {pkg})"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


@pytest.fixture(scope="module")
def page():
    why = _missing()
    if why: pytest.skip(f"browser test skipped: {why}")
    from playwright.sync_api import sync_playwright
    port, tmp = _free_port(), Path(tempfile.mkdtemp())
    env = {**os.environ, "IN_TEST": "1", "JUPYTER_CONFIG_DIR": str(tmp / "config"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
           "JUPYTER_DATA_DIR": str(tmp / "data"), "PYTHONUNBUFFERED": "1"}
    log = open(tmp / "voila.log", "w")
    from clapbook.cli import voila_command            # served as `clapbook demo` serves its page
    server = subprocess.Popen(voila_command(CHAPTER, port) + ["--no-browser", "--show_tracebacks=True"], cwd=CHAPTER.parent,
                              env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        # wait until Voila says where it listens: jupyter_server moves to another port when the one asked for has been
        # taken meanwhile (under `pytest -n 2` the other worker's kernels bind random ports), so read the address it printed
        url = None
        for _ in range(240):
            found = re.search(r"(http://127\.0\.0\.1:\d+/)", (tmp / "voila.log").read_text())
            if found: url = found.group(1); break
            if server.poll() is not None: break
            time.sleep(0.5)
        if url is None: pytest.fail(f"Voila did not start: {(tmp / 'voila.log').read_text()[-3000:]}")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            pg = browser.new_page()
            pg.set_default_timeout(600_000)
            connected = []                      # the page's widget manager has reached the kernel
            kernel = {"state": "busy", "since": time.time()}
            pg.events = []                      # console messages and websocket closes, shown when a test fails
            pg.ws_frames = []                   # (time, msg_type, start) of every websocket frame the page received
            pg.on("console", lambda m: pg.events.append(f"console {m.type}: {m.text[:500]}"))
            pg.on("pageerror", lambda e: pg.events.append(f"page error: {str(e)[:500]}"))
            def on_ws(ws):
                ws.on("close", lambda _ws: pg.events.append(f"websocket closed: {ws.url}"))
                def received(data):
                    d = data if isinstance(data, str) else data.decode("utf-8", "ignore")
                    if "kernel_info_reply" in d: connected.append(1)
                    t = re.search(r'"msg_type": "(\w+)"', d)
                    pg.ws_frames.append((time.time(), t.group(1) if t else "?", d[:300]))
                    for state in ("busy", "idle"):
                        if f'"execution_state": "{state}"' in d: kernel.update(state=state, since=time.time())
                ws.on("framereceived", received)
            pg.on("websocket", on_ws)
            pg.goto(url, timeout=900_000, wait_until="domcontentloaded")   # Voilà runs the chapter, showing outputs as they come
            try: pg.wait_for_selector(".clapbook-zero-shot-demo .js-plotly-plot", timeout=900_000)
            except Exception as e:
                pytest.fail(f"the zero-shot demo's figure never appeared in the page ({type(e).__name__}); kernel {kernel}, "
                            f"page text: {pg.inner_text('body')[-1500:]!r}\npage events:\n" + "\n".join(pg.events[-40:])
                            + f"\nVoila log:\n{(tmp / 'voila.log').read_text()[-3000:]}")
            # wait until the kernel has finished the chapter: iopub broadcasts its busy/idle status to the page
            # (Playwright's sync API hands the page's events to the handlers above only while it is called, so the
            # loops below wait with pg.wait_for_timeout, never time.sleep, or the kernel would seem busy forever)
            t0 = time.time()
            while not (kernel["state"] == "idle" and time.time() - kernel["since"] > 10):
                if time.time() - t0 > 900:
                    recent = [f for f in pg.ws_frames if f[0] > time.time() - 60]
                    pytest.fail(f"the kernel did not finish running the chapter within 900 s; kernel {kernel}; "
                                f"{len(recent)} frames in the last 60 s, e.g.:\n" + "\n".join(f"{f[1]}: {f[2]}" for f in recent[-12:]))
                pg.wait_for_timeout(500)
            for _ in range(240):
                if connected: break
                pg.wait_for_timeout(500)
            else: pytest.fail("the page never connected to its kernel (no kernel_info_reply on the websocket)")
            pg.log = tmp / "voila.log"
            yield pg
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try: server.wait(20)
        except subprocess.TimeoutExpired: os.killpg(server.pid, signal.SIGKILL)
        log.close()
        if os.environ.get("CLAPBOOK_KEEP_VOILA_LOG"): print((tmp / "voila.log").read_text()[-5000:])


def plot_data(pg, widget_class: str, trace: int, key: str):
    "A trace attribute of the plotly figure inside the widget with `widget_class`, read from the page."
    pg.wait_for_function(f"""() => {{                     // plotly draws asynchronously after the widget appears
        const gd = document.querySelector('.{widget_class} .js-plotly-plot');
        return gd && gd.data && gd.data.length > {trace};
    }}""", timeout=600_000)
    return pg.evaluate(f"""() => {{
        const gd = document.querySelector('.{widget_class} .js-plotly-plot');
        const plain = (v) => ArrayBuffer.isView(v) ? Array.from(v)             // numpy arrays arrive as typed arrays
            : Array.isArray(v) ? v.map(plain)
            : (v && typeof v === 'object') ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
            : v;
        const v = gd.data[{trace}]['{key}'];
        return plain(v === undefined ? null : v);
    }}""")


def wait_change(pg, widget_class, trace, key, before, timeout=240):
    "Poll the page until the figure's trace attribute differs from `before`; the kernel computes the new value (slowly while `pytest -n 2` loads both cores)."
    t0 = time.time()
    while time.time() - t0 < timeout:
        now = plot_data(pg, widget_class, trace, key)
        if now != before: return now
        pg.wait_for_timeout(250)
    raise AssertionError(f"{widget_class}: trace {trace} {key} did not change within {timeout} s; "
                         f"page events:\n" + "\n".join(pg.events[-40:]) + f"\nVoila log:\n{pg.log.read_text()[-3000:]}")


def check_similarity_matrix_mode_toggle(page):
    cls = "clapbook-similarity-matrix"
    before = plot_data(page, cls, 0, "z")                          # the chapter leaves it on raw cosines
    page.click(f".{cls} button:has-text('softmax over captions')")
    after = wait_change(page, cls, 0, "z", before)
    assert all(abs(sum(row) - 1) < 1e-3 for row in after)          # each row is now a softmax
    assert "audio→text" in page.text_content(f".{cls} .gtitle")       # the title the kernel wrote


def check_embedding_explorer_colour_toggle(page):
    cls = "clapbook-embedding-explorer"
    before = plot_data(page, cls, 1, "marker")                     # the chapter leaves it coloured by modality
    page.click(f".{cls} button:has-text('label')")
    after = wait_change(page, cls, 1, "marker", before)
    assert isinstance(after["color"], list) and len(set(after["color"])) > 1   # one colour per class now


def check_temporal_probe_event_choice(page):
    cls = "clapbook-temporal-probe"
    before = plot_data(page, cls, 0, "z")
    page.select_option(f".{cls} select >> nth=1", "thunder")      # event B
    after = wait_change(page, cls, 0, "z", before)
    assert len(after) == 2 and len(after[0]) == 2
    assert any("thunder" in c for c in plot_data(page, cls, 0, "x"))


def check_zero_shot_demo_clip_choice(page):
    cls = "clapbook-zero-shot-demo"
    before = plot_data(page, cls, 0, "x")                          # probabilities for the chapter's last clip
    page.select_option(f".{cls} select >> nth=0", index=9)         # pick dataset clip 9 (the chapter left clip 5)
    after = wait_change(page, cls, 0, "x", before)
    assert abs(sum(after) - 1) < 1e-3                              # a softmax over the labels
    assert page.text_content(f".{cls} .gtitle").startswith("dataset 9")


CHECKS = (check_similarity_matrix_mode_toggle, check_embedding_explorer_colour_toggle, check_temporal_probe_event_choice,
          check_zero_shot_demo_clip_choice)


def test_every_widget_responds_in_the_browser(page):
    """One test for the four widgets: they share one page, whose kernel runs the chapter, and under `pytest -n 2` separate
    tests could land on both workers, each starting its own server and kernel (pytest-xdist's loadgroup did not keep them
    together with pytest 9). Every check runs; the failure names each one that failed."""
    failures = []
    for check in CHECKS:
        try: check(page)
        except Exception as e: failures.append(f"{check.__name__}: {type(e).__name__}: {e}")
    assert not failures, f"{len(failures)} of {len(CHECKS)} widget checks failed:\n\n" + "\n\n".join(failures)
