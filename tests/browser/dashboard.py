#!/usr/bin/env python3
"""The dashboard in a real browser: headless Chromium (Debian's chromium
and chromium-driver) driven over WebDriver by selenium, against a running
`aquifer dev` stack.

It loads every page, checks what they show, signs in and out, watches the
job page follow a job to its end without a reload, checks that a visit
without a token is refused and that no secret (the admin's and a user's
token, the licence key a well hands out) appears in any page, and saves a
screenshot of each page. The screenshots' paths are printed.

    python3 tests/browser/dashboard.py --aquifer target/release/aquifer \
        --out target/browser
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

# What the dev stack's licence well hands out as a secret (cli/src/stack.rs).
LICENCE_KEY = "LIC-7F3A-92C1-55D0"
# How long the browser waits for a page to change (the job's end).
PATIENCE_S = 120


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """`aquifer dev` in a temporary directory, ready once it has printed
    its admin token."""

    def __init__(self, aquifer, workdir):
        self.url = f"http://127.0.0.1:{free_port()}"
        env = dict(os.environ, RUST_LOG="warn")
        self.proc = subprocess.Popen(
            [aquifer, "dev", "--data-dir", os.path.join(workdir, "dev"),
             "--listen", self.url.removeprefix("http://")],
            stdout=subprocess.PIPE, text=True, env=env, cwd=workdir)
        self.token = None
        for line in self.proc.stdout:
            if line.startswith("admin token:"):
                self.token = line.split(":", 1)[1].strip()
                break
        if self.token is None:
            sys.exit(f"browser: aquifer dev stopped before it was ready ({self.proc.wait()})")

    def call(self, method, path, body=None, token=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Bearer {token or self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as answer:
            return json.load(answer)

    def submit(self, job):
        return self.call("POST", "/0/jobs", job)["id"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)


def job(name, resources, script):
    return {"name": name, "target": "local", "timeout_s": 120,
            "resources": [{"name": r, "type": r} for r in resources],
            "tasks": [{"name": "main", "script": script}]}


class Visit:
    """The browser, with every page it saw kept for the secret check."""

    def __init__(self, out):
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--no-first-run", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync",
                     "--window-size=1280,1000",
                     f"--user-data-dir={tempfile.mkdtemp(prefix='aquifer-chromium-')}"]:
            options.add_argument(flag)
        # The driver is Debian's: nothing is downloaded.
        self.driver = webdriver.Chrome(
            service=Service(executable_path="/usr/bin/chromedriver"), options=options)
        self.out = out
        self.seen = []
        self.shots = []

    def open(self, url):
        self.driver.get(url)
        return self.keep()

    def keep(self):
        source = self.driver.page_source
        self.seen.append((self.driver.current_url, source))
        return source

    def text(self, css):
        """The element's rendered text, read in one script call: the live
        page replaces its status while we look, which would leave an
        element reference stale between finding and reading it."""
        return self.driver.execute_script(
            "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;", css)

    def shot(self, name):
        path = os.path.join(self.out, f"{name}.png")
        self.driver.save_screenshot(path)
        self.shots.append(path)

    def sign_in(self, url, token):
        self.open(url + "/login")
        self.driver.find_element(By.ID, "token").send_keys(token)
        self.driver.find_element(By.CSS_SELECTOR, "form button").click()
        try:
            WebDriverWait(self.driver, 30).until(lambda d: d.title.startswith("Overview"))
        except Exception:
            raise AssertionError(f"signing in failed: {self.driver.page_source}")
        return self.keep()

    def sign_out(self):
        self.driver.find_element(By.CSS_SELECTOR, "header form button").click()
        WebDriverWait(self.driver, 30).until(lambda d: d.title.startswith("Sign in"))


def check(condition, what):
    if not condition:
        raise AssertionError(what)


def run(aquifer, out, workdir):
    stack = Stack(aquifer, workdir)
    visit = Visit(out)
    try:
        # Refused without a token: the login form, and nothing else.
        page = visit.open(stack.url + "/")
        if 'action="/login"' not in page:
            visit.shot("first-visit")
        check('action="/login"' in page and "Queues" not in page,
              f"a visit without a token sees the login form only; it saw, at "
              f"{visit.driver.current_url}: {page[:2000]}")
        visit.shot("login")

        alice = stack.call("POST", "/0/admin/users", {"name": "alice", "privileges": []})["token"]
        # The licence is held for a while by the first job; the second
        # waits for it, then prints markup that must stay text.
        holder = stack.submit(job("holds-licence", ["license", "probe"],
                                  "echo holding; sleep 4; echo done"))
        waiter = stack.submit(job("waits-for-licence", ["license"],
                                  "echo '<b id=\"injected\">not markup</b>'"))
        mine = stack.call("POST", "/0/jobs", job("alices", ["probe"], "echo hers"), token=alice)["id"]

        page = visit.sign_in(stack.url, stack.token)
        check(visit.driver.get_cookie("aquifer_token")["httpOnly"], "the cookie is HttpOnly")
        check(visit.driver.execute_script("return document.cookie") == "",
              "scripts cannot read the token")
        for shown in ["Queues", "license", "probes", "licenses", "local", "holds-licence"]:
            check(shown in page, f"the overview shows {shown}")
        visit.shot("overview")

        # The waiting job's page: its chain names the holder; then it
        # follows the job to its end without a reload.
        visit.open(f"{stack.url}/jobs/{waiter}")
        visit.driver.execute_script("window.notReloaded = true")
        status = visit.text("#status")
        if "queued" in visit.text("#status .state"):
            check(f"held by job {holder}" in status and f"job {holder} (holds 1 × license)" in status,
                  f"a waiting job names its holder and the chain: {status}")
        visit.shot("job-waiting")
        WebDriverWait(visit.driver, PATIENCE_S).until(
            lambda d: visit.text("#status .state") == "ended")
        check(visit.driver.execute_script("return window.notReloaded === true"),
              "the page updated without a reload")
        stream = visit.text("#stream")
        for line in ["queued for license", "started", "ended: succeeded",
                     '<b id="injected">not markup</b>']:
            check(line in stream, f"the live stream shows {line!r}: {stream}")
        check(not visit.driver.find_elements(By.ID, "injected"), "output stays text")
        check(visit.text("#following") == "The job has ended.", "it says the job ended")
        visit.keep()
        visit.shot("job-ended")

        # Jobs, filtered.
        visit.open(stack.url + "/jobs")
        Select(visit.driver.find_element(By.ID, "state")).select_by_value("ended")
        visit.driver.find_element(By.ID, "owner").send_keys("alice")
        visit.driver.find_element(By.CSS_SELECTOR, "form.filter button").click()
        WebDriverWait(visit.driver, 30).until(lambda d: "owner=alice" in d.current_url)
        page = visit.keep()
        check("waits-for-licence" not in page, "the filter leaves out others' jobs")
        visit.shot("jobs-filtered")
        visit.open(stack.url + "/jobs")
        check("holds-licence" in visit.keep(), "the list shows every job to the admin")
        visit.open(f"{stack.url}/jobs/{holder}")
        visit.shot("job-holder")

        visit.sign_out()
        page = visit.open(stack.url + "/jobs")
        check('action="/login"' in page and "holds-licence" not in page,
              "signed out, the pages are refused")

        # Alice sees her own job, and is told what she may not see.
        page = visit.sign_in(stack.url, alice)
        check("alices" in page and "holds-licence" not in page, "alice sees her jobs only")
        check("admin.holds" in page and "admin.registry" in page,
              "alice is told which privilege the resources and wells need")
        visit.shot("overview-user")
        page = visit.open(f"{stack.url}/jobs/{waiter}")
        check("waits-for-licence" not in page, "alice cannot open the admin's job")
        visit.open(f"{stack.url}/jobs/{mine}")
        visit.shot("job-user")

        # No secret, in any page anybody saw.
        for url, source in visit.seen:
            for name, secret in [("the admin's token", stack.token),
                                 ("alice's token", alice), ("the licence key", LICENCE_KEY)]:
                check(secret not in source, f"{name} appears in {url}")
        print(f"browser: {len(visit.seen)} pages checked; none shows a secret")
    finally:
        visit.driver.quit()
        stack.stop()
    return visit.shots


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aquifer", required=True)
    parser.add_argument("--out", required=True, help="where the screenshots go")
    args = parser.parse_args()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    aquifer = os.path.abspath(args.aquifer)
    with tempfile.TemporaryDirectory(prefix="aquifer-browser-") as workdir:
        shots = run(aquifer, out, workdir)
    print("browser: screenshots:")
    for path in shots:
        print(f"  {path}")


if __name__ == "__main__":
    main()
