#!/usr/bin/python3
"""Clicks a button of a page in headless Chromium, as a person would, and waits for what follows.

    browser-click.py CHROMIUM URL SELECTOR [GONE_SELECTOR]

Starts CHROMIUM headless with a DevTools port of its own, opens URL, waits (at most 30 s) until
SELECTOR matches a rendered element, clicks it (a real mouse press and release at its centre, so
the page's own event handlers run), then waits until GONE_SELECTOR (default: SELECTOR) matches
nothing any more. Prints the page's body text afterwards. Exit 0 on success, 1 with the reason.
Needs python3-websocket (Debian), which scripts/check-ui installs; hence /usr/bin/python3, the
Debian interpreter that package belongs to, not whichever python3 is first on PATH.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import websocket  # python3-websocket


def fail(message):
    print("browser-click: " + message, file=sys.stderr)
    sys.exit(1)


class Page:
    def __init__(self, url):
        self.socket = websocket.create_connection(url, timeout=30)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    fail(method + ": " + json.dumps(reply["error"]))
                return reply.get("result", {})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            fail("the page threw: " + json.dumps(result["exceptionDetails"]))
        return result["result"].get("value")

    def wait_for(self, expression, what, seconds=30):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        fail("timed out after %d s waiting for %s" % (seconds, what))


def main():
    if len(sys.argv) not in (4, 5):
        fail("usage: browser-click.py CHROMIUM URL SELECTOR [GONE_SELECTOR]")
    chromium, url, selector = sys.argv[1:4]
    gone = sys.argv[4] if len(sys.argv) == 5 else selector
    profile = tempfile.mkdtemp(prefix="sidobot-browser-click.")
    browser = subprocess.Popen(
        [chromium, "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run", "--disable-dev-shm-usage",
         "--remote-debugging-port=0", "--user-data-dir=" + profile, "--window-size=1280,900", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.monotonic() + 30
        while not (os.path.exists(port_file) and open(port_file).read().count("\n") >= 1):
            if browser.poll() is not None or time.monotonic() > deadline:
                fail("chromium did not open its DevTools port")
            time.sleep(0.1)
        port = open(port_file).read().split("\n")[0].strip()
        targets = json.loads(subprocess.run(["curl", "-fsS", "http://127.0.0.1:%s/json/list" % port],
                                            capture_output=True, check=True).stdout)
        page = Page(next(t for t in targets if t["type"] == "page")["webSocketDebuggerUrl"])
        page.call("Page.enable")
        page.call("Page.navigate", url=url)
        found = "document.querySelector(%s)" % json.dumps(selector)
        box = page.wait_for(
            "(() => { const e = %s; if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect(); return r.width > 0 ? {x: r.x + r.width / 2, y: r.y + r.height / 2} : null; })()" % found,
            "an element matching " + selector)
        for kind in ("mousePressed", "mouseReleased"):
            page.call("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left", clickCount=1)
        page.wait_for("!document.querySelector(%s)" % json.dumps(gone), "no element matching " + gone + " after the click")
        print(page.evaluate("document.body.innerText"))
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
