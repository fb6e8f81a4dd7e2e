"""The console in a real browser (Debian's chromium driven by Playwright; scripts/install-browser.sh):
sign-in failure and success (the session cookie HttpOnly and SameSite=Strict, no secret in a
URL or the page), a keyboard-only sign-in, the image list (tabs, a filter, an image's detail
with its hygiene findings), another account's private image never visible, a POST without the
CSRF token refused, sign-out ending the session, and a browser opening `/` sent to the console.
Screenshots of the main pages go to .cache/console-screenshots/."""

import os
import shutil
import tempfile
import time

import harness as h

S = None
WORK = None
OWNER = None
OTHER = None
MINE = None
THEIRS = None
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHOTS = os.path.join(ROOT, ".cache", "console-screenshots")
CHROMIUM = "/usr/bin/chromium"


def setUpModule():
    global S, WORK, OWNER, OTHER, MINE, THEIRS
    h.require_tools()
    if not os.path.exists(CHROMIUM):
        raise AssertionError("chromium is required (scripts/install-browser.sh)")
    try:
        import playwright  # noqa: F401
    except ImportError as e:
        raise AssertionError("playwright is required (scripts/install-browser.sh)") from e
    os.makedirs(SHOTS, exist_ok=True)
    WORK = tempfile.mkdtemp(prefix="ikon-e2e-console-")
    disk = h.make_disk(WORK, size_mib=16, data_mib=1)
    S = h.Server("", "console")
    OWNER = S.account("console-owner")
    OTHER = S.account("console-other")
    MINE = S.publish(disk, name="owner-web-server", account=OWNER, os_name="Debian 12 64bit",
                     platform="Debian")["ImageId"]
    THEIRS = S.publish(disk, name="other-secret-project", account=OTHER, os_name="Debian 12 64bit",
                       platform="Debian")["ImageId"]


def tearDownModule():
    try:
        if S:
            S.stop()
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
        h.stop_all()


class _Browser(h.ServerTestCase):
    """One chromium per class, a fresh context (cookies) per test."""

    @property
    def servers(self):
        return [S] if S else []

    @classmethod
    def setUpClass(cls):
        from playwright.sync_api import sync_playwright
        cls.pw = sync_playwright().start()
        cls.browser = cls.pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])

    @classmethod
    def tearDownClass(cls):
        cls.browser.close()
        cls.pw.stop()

    def setUp(self):
        self.ctx = self.browser.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.ctx.new_page()

    def tearDown(self):
        self.ctx.close()
        super().tearDown()

    def sign_in(self, acc, secret_key=None):
        p = self.page
        p.goto(S.url + "/console/sign-in")
        p.get_by_label("SecretId").fill(acc["SecretId"])
        p.get_by_label("SecretKey").fill(secret_key or acc["SecretKey"])
        p.get_by_role("button", name="Sign in").click()
        p.wait_for_load_state()


class Console(_Browser):
    def test_sign_in_failure_and_success(self):
        p = self.page
        self.sign_in(OWNER, secret_key="x" * 32)
        self.assertIn("Not signed in", p.get_by_role("alert").inner_text())
        self.assertEqual(self.ctx.cookies(), [])
        p.screenshot(path=os.path.join(SHOTS, "sign-in-failed.png"), full_page=True)
        self.sign_in(OWNER)
        self.assertTrue(p.url.endswith("/console/images"), p.url)
        (c,) = [c for c in self.ctx.cookies() if c["name"] == "ikon_session"]
        self.assertTrue(c["httpOnly"])
        self.assertEqual(c["sameSite"], "Strict")
        self.assertEqual(c["path"], "/console")
        for secret in (OWNER["SecretKey"],):
            self.assertNotIn(secret, p.url)
            self.assertNotIn(secret, p.content())
        self.assertIn(OWNER["AccountId"], p.locator("header").inner_text())

    def test_keyboard_only_sign_in(self):
        p = self.page
        p.goto(S.url + "/console/sign-in")
        # The SecretId field has focus on arrival; Tab moves to SecretKey, Enter submits.
        p.keyboard.type(OWNER["SecretId"])
        p.keyboard.press("Tab")
        p.keyboard.type(OWNER["SecretKey"])
        p.keyboard.press("Enter")
        p.wait_for_url("**/console/images")
        # Tab through to the first image link and open it with Enter.
        for _ in range(40):
            p.keyboard.press("Tab")
            focused = p.evaluate("document.activeElement && document.activeElement.textContent")
            if focused and "owner-web-server" in focused:
                break
        p.keyboard.press("Enter")
        p.wait_for_url("**/console/images/%s*" % MINE)
        self.assertEqual(p.get_by_role("heading", level=1).inner_text(), "owner-web-server")

    def test_images_list_detail_and_another_accounts_image(self):
        p = self.page
        self.sign_in(OWNER)
        table = p.get_by_role("table")
        self.assertIn("owner-web-server", table.inner_text())
        self.assertNotIn("other-secret-project", p.content())
        p.screenshot(path=os.path.join(SHOTS, "images.png"), full_page=True)
        for tab in ("Public images", "Shared images", "Marketplace images"):
            p.get_by_role("link", name=tab).click()
            p.wait_for_load_state()
            self.assertNotIn("other-secret-project", p.content())
        p.get_by_role("link", name="Custom images").click()
        p.get_by_label("Name").fill("nothing-like-this")
        p.get_by_role("button", name="Filter").click()
        p.wait_for_load_state()
        self.assertIn("No custom images here", p.content())
        # Detail: attributes and the hygiene scan (computed after the image turned NORMAL).
        for _ in range(100):
            p.goto(S.url + "/console/images/%s" % MINE)
            if "Scan DONE" in p.content():
                break
            time.sleep(0.2)
        self.assertIn("Scan DONE", p.content())
        self.assertIn("Debian 12 64bit", p.content())
        p.screenshot(path=os.path.join(SHOTS, "image-detail.png"), full_page=True)
        # Another account's private image: not found, nothing about it shown.
        r = p.goto(S.url + "/console/images/%s" % THEIRS)
        self.assertEqual(r.status, 404)
        self.assertNotIn("other-secret-project", p.content())

    def test_csrf_less_post_refused_and_sign_out(self):
        p = self.page
        self.sign_in(OWNER)
        r = self.ctx.request.post(S.url + "/console/sign-out", form={"csrf": "forged"})
        self.assertEqual(r.status, 403)
        r = self.ctx.request.post(S.url + "/console/sign-out", form={})
        self.assertEqual(r.status, 403)
        # Still signed in; the real form signs out and the session is gone.
        p.goto(S.url + "/console/images")
        self.assertTrue(p.url.endswith("/console/images"))
        p.get_by_role("button", name="Sign out").click()
        p.wait_for_url("**/console/sign-in")
        p.goto(S.url + "/console/images")
        self.assertTrue(p.url.endswith("/console/sign-in"), p.url)

    def test_disabling_the_account_ends_its_session(self):
        acc = S.account("console-doomed")
        p = self.page
        self.sign_in(acc)
        self.assertTrue(p.url.endswith("/console/images"))
        S.admin("account", "disable", acc["AccountId"])
        p.goto(S.url + "/console/images")
        self.assertTrue(p.url.endswith("/console/sign-in"), p.url)
        self.sign_in(acc)
        self.assertIn("Not signed in", p.get_by_role("alert").inner_text())

    def test_headers_and_the_bare_address(self):
        p = self.page
        r = p.goto(S.url + "/")
        self.assertTrue(p.url.endswith("/console/sign-in"), p.url)
        csp = r.headers.get("content-security-policy", "")
        self.assertIn("script-src 'self'", csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertEqual(r.headers.get("x-frame-options"), "DENY")
        # The API at the same address still answers API clients.
        c = h.sdk(S, OWNER)
        self.assertGreater(c.DescribeRegions(h.req("DescribeRegions")).TotalCount, 0)


class ConsoleActions(_Browser):
    """The owner's actions with the API's rules and messages."""

    def test_rename_share_delete(self):
        disk = h.make_disk(WORK, name="act.qcow2", size_mib=16, data_mib=1)
        image = S.publish(disk, name="to-be-renamed", account=OWNER, os_name="Debian 12 64bit",
                          platform="Debian")["ImageId"]
        p = self.page
        self.sign_in(OWNER)
        p.goto(S.url + "/console/images/%s" % image)
        # Rename: a name the rules refuse first, then a good one.
        p.get_by_label("Name", exact=True).fill("x" * 200)
        p.get_by_role("button", name="Save").click()
        self.assertIn("name", p.get_by_role("alert").inner_text().lower())
        p.get_by_label("Name", exact=True).fill("renamed-in-console")
        p.get_by_label("Description").fill("made by hand")
        p.get_by_role("button", name="Save").click()
        p.wait_for_load_state()
        self.assertEqual(p.get_by_role("heading", level=1).inner_text(), "renamed-in-console")
        self.assertIn("Saved.", p.get_by_role("status").inner_text())
        # Share with the other account (the limit is shown), then deletion is refused.
        self.assertIn("Shared with 0 of at most", p.content())
        p.get_by_label("Account ID").fill(OTHER["AccountId"])
        p.get_by_role("button", name="Share", exact=True).click()
        p.wait_for_load_state()
        self.assertIn("Shared with 1 of at most", p.content())
        p.screenshot(path=os.path.join(SHOTS, "image-owner-actions.png"), full_page=True)
        p.get_by_role("button", name="Delete image").click()
        p.wait_for_load_state()
        self.assertIn("shared", p.get_by_role("alert").inner_text().lower())
        # The recipient sees it under Shared images, without the owner's forms; a forged
        # rename with its own valid session is refused by the service.
        other = self.browser.new_context()
        op = other.new_page()
        op.goto(S.url + "/console/sign-in")
        op.get_by_label("SecretId").fill(OTHER["SecretId"])
        op.get_by_label("SecretKey").fill(OTHER["SecretKey"])
        op.get_by_role("button", name="Sign in").click()
        op.wait_for_load_state()
        op.get_by_role("link", name="Shared images").click()
        op.wait_for_load_state()
        self.assertIn("renamed-in-console", op.content())
        op.goto(S.url + "/console/images/%s" % image)
        self.assertEqual(op.get_by_role("button", name="Save").count(), 0)
        csrf = op.locator("header input[name=csrf]").get_attribute("value")
        r = other.request.post(S.url + "/console/images/%s/attributes" % image,
                               form={"csrf": csrf, "name": "hijacked", "description": ""})
        self.assertIn("shared to you: it can only be used to create instances", r.text())
        self.assertNotIn("hijacked", r.text().split("<main>")[1].split("</h1>")[0])
        other.close()
        # Unshare, then delete.
        p.reload()
        p.get_by_role("button", name="Unshare from %s" % OTHER["AccountId"]).click()
        p.wait_for_load_state()
        self.assertIn("Shared with 0 of at most", p.content())
        p.get_by_role("button", name="Delete image").click()
        p.wait_for_url("**/console/images?region=*")
        self.assertNotIn("renamed-in-console", p.content())


def warned_guest():
    """A Debian guest (make-linux.sh) with a shell history planted by debugfs."""
    import subprocess
    env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin", TMPDIR=WORK)
    raw = os.path.join(WORK, "warned.raw")
    subprocess.run(["bash", os.path.join(ROOT, "scripts/fixtures/make-linux.sh"), raw, "debian12"], env=env,
                   check=True, capture_output=True, timeout=600)
    hist = os.path.join(WORK, "hist")
    with open(hist, "w") as f:
        f.write("mysql -u root -p\n")
    cmds = os.path.join(WORK, "plant.debugfs")
    with open(cmds, "w") as f:
        f.write("write %s /root/.bash_history\n" % hist)
    subprocess.run(["debugfs", "-w", "-f", cmds, raw + "?offset=1048576"], env=env, check=True,
                   capture_output=True)
    return raw


class ConsoleOperator(_Browser):
    """The administrator's review queue; tenants are refused."""

    def test_review_queue_shows_findings_and_approves(self):
        image = S.publish(warned_guest(), name="warned-stack", account=OWNER)["ImageId"]
        out = h.common(S, OWNER).call_json("SubmitMarketImage", {"ImageId": image, "PricePerHour": 0.2})
        listing = out["Response"]["ListingId"]
        p = self.page
        self.sign_in(OWNER)
        r = p.goto(S.url + "/console/operator/market")
        self.assertEqual(r.status, 403)
        self.assertEqual(p.get_by_role("link", name="Marketplace review").count(), 0)
        p.get_by_role("button", name="Sign out").click()
        p.wait_for_url("**/console/sign-in")
        self.sign_in({"SecretId": S.admin_id, "SecretKey": S.admin_key})
        p.get_by_role("link", name="Marketplace review").click()
        p.wait_for_load_state()
        section = p.locator("section", has_text=listing)
        self.assertIn("shell-history", section.inner_text())
        self.assertIn("/root/.bash_history", section.inner_text())
        p.screenshot(path=os.path.join(SHOTS, "operator-review.png"), full_page=True)
        p.get_by_role("button", name="Approve %s" % listing).click()
        p.wait_for_load_state()
        self.assertIn("Listing approved", p.get_by_role("status").inner_text())
        self.assertNotIn(listing, p.locator("main").inner_text().replace("Listing approved", ""))
        # Every account now sees the marketplace image.
        other = self.browser.new_context()
        op = other.new_page()
        op.goto(S.url + "/console/sign-in")
        op.get_by_label("SecretId").fill(OTHER["SecretId"])
        op.get_by_label("SecretKey").fill(OTHER["SecretKey"])
        op.get_by_role("button", name="Sign in").click()
        op.wait_for_load_state()
        op.get_by_role("link", name="Marketplace images").click()
        op.wait_for_load_state()
        self.assertIn("warned-stack [market]", op.content())
        other.close()
