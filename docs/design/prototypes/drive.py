import re, sys, requests, html
RP = "http://127.0.0.1:8765"
def sign_in(login, s=None, tamper_state=False):
    s = s or requests.Session()
    r = s.get(RP + "/oidc/authenticate/", allow_redirects=not tamper_state)
    if tamper_state:
        loc = r.headers["Location"]
        loc = re.sub(r"state=[^&]+", "state=forged", loc)
        r = s.get(loc)
    assert "/interaction/" in r.url, r.url
    action = html.unescape(re.search(r'action="([^"]+)"', r.text).group(1))
    r = s.post(requests.compat.urljoin(r.url, action), data={"prompt": "login", "login": login, "password": "any"})
    if 'name="prompt" value="consent"' in r.text:
        action = html.unescape(re.search(r'action="([^"]+)"', r.text).group(1))
        r = s.post(requests.compat.urljoin(r.url, action), data={"prompt": "consent"})
    return r.status_code, r.url, r.text[:200]
if __name__ == "__main__":
    print(sign_in(sys.argv[1], tamper_state=len(sys.argv) > 2))
