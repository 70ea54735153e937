#!/usr/bin/env python3
"""Lists the circles of `use` between the modules of each crate under crates/ (a module
that names `crate::x` or `super::x` depends on x). Comments and doc links are not
dependencies and are skipped; `#[cfg(test)] mod tests` is skipped too. Exits 1 when
there is a circle (run by scripts/test.sh)."""
import os,re,sys
os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)),'..','crates'))
from collections import defaultdict
def crates():
    for root,dirs,files in os.walk('.'):
        if 'Cargo.toml' in files and os.path.isdir(os.path.join(root,'src')): yield root
def modname(src, path):
    rel=os.path.relpath(path,src)[:-3]
    parts=rel.split('/')
    if parts[-1] in ('mod','lib','main'): parts=parts[:-1]
    return '::'.join(parts)
total=0
for c in crates():
    src=os.path.join(c,'src'); mods={}
    for root,_,files in os.walk(src):
        for f in files:
            if f.endswith('.rs'): mods[modname(src,os.path.join(root,f))]=os.path.join(root,f)
    g=defaultdict(set)
    for m,p in mods.items():
        t=open(p).read()
        t=re.sub(r'#\[cfg\(test\)\]\s*mod tests\s*\{.*','',t,flags=re.S)
        t=re.sub(r'//[^\n]*','',t)
        for mm in re.findall(r'crate::([a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*)',t):
            parts=mm.split('::')
            for k in range(len(parts),0,-1):
                cand='::'.join(parts[:k])
                if cand in mods and cand!=m and not m.startswith(cand+'::') and not cand.startswith(m+'::'):
                    g[m].add(cand); break
        base=m.split('::')[:-1]
        for mm in re.findall(r'super::([a-z_][a-z0-9_]*)',t):
            cand='::'.join(base+[mm]) if base else mm
            if cand in mods and cand!=m: g[m].add(cand)
    # tarjan
    idx={};low={};st=[];on=set();sccs=[];n=[0]
    sys.setrecursionlimit(10000)
    def sc(v):
        idx[v]=low[v]=n[0];n[0]+=1;st.append(v);on.add(v)
        for w in g[v]:
            if w not in idx: sc(w);low[v]=min(low[v],low[w])
            elif w in on: low[v]=min(low[v],idx[w])
        if low[v]==idx[v]:
            comp=[]
            while True:
                w=st.pop();on.discard(w);comp.append(w)
                if w==v:break
            if len(comp)>1: sccs.append(comp)
    for v in list(mods):
        if v not in idx: sc(v)
    for s in sccs:
        total+=1; print(c, sorted(s))
print("cycles:",total)
sys.exit(1 if total else 0)
