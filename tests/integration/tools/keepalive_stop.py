#!/usr/bin/env python3
"""keepalive_stop.py URL USER:PASS PIDFILE - what a load balancer's pooled
connection sees when a node stops: one PUT on a keep-alive connection, then
SIGTERM to the node, then a second PUT and a GET on the SAME connection.
Prints one line per request: "<status> <Connection header>". Exit 0 when it
could talk; the caller judges the lines."""
import base64
import http.client
import os
import signal
import sys
import time
import urllib.parse

url, cred, pidfile = sys.argv[1:4]
u = urllib.parse.urlsplit(url)
auth = {"Authorization": "Basic " + base64.b64encode(cred.encode()).decode()}
c = http.client.HTTPConnection(u.hostname, u.port, timeout=20)


def put(path, body):
    c.request("PUT", path, body=body, headers=auth)
    r = c.getresponse()
    r.read()
    print(r.status, r.getheader("Connection", "-"), flush=True)


put("/libs/ka/one.bin", os.urandom(4096))
os.kill(int(open(pidfile).read()), signal.SIGTERM)
time.sleep(1)  # the node has quiesced: its port no longer accepts
put("/libs/ka/two.bin", os.urandom(4096))
try:
    c.request("GET", "/libs/ka/two.bin", headers=auth)
    r = c.getresponse()
    r.read()
    print(r.status, r.getheader("Connection", "-"), flush=True)
except (OSError, http.client.HTTPException) as e:
    print("closed", type(e).__name__, flush=True)
