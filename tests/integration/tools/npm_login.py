#!/usr/bin/env python3
"""npm_login.py USERCONFIG REGISTRY USER PASSWORD [npm args...]

Run the real `npm login --auth-type=legacy` (or the npm command given after
the password, e.g. `adduser`) on a pseudo-terminal, since npm reads the
password only from a terminal: answer its Username and Password prompts,
print everything npm wrote and exit with npm's exit status.
"""
import os
import pty
import select
import sys
import time


def main():
    userconfig, registry, user, password = sys.argv[1:5]
    cmd = sys.argv[5:] or ["login"]
    argv = ["npm", *cmd, "--auth-type=legacy", "--registry", registry]
    env = dict(os.environ, NPM_CONFIG_USERCONFIG=userconfig, NO_COLOR="1")
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe("npm", argv, env)
    out = b""
    answered = {b"Username:": False, b"Password:": False}
    deadline = time.time() + 60
    while time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if not r:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        for prompt, reply in ((b"Username:", user), (b"Password:", password)):
            if not answered[prompt] and prompt in out:
                answered[prompt] = True
                os.write(fd, reply.encode() + b"\r")
    _, status = os.waitpid(pid, 0)
    sys.stdout.write(out.decode(errors="replace"))
    sys.exit(os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8)


if __name__ == "__main__":
    main()
