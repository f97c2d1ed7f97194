#!/usr/bin/env bash
# Instructions per AggregatorEngine::add in steady state, counted by callgrind
# (independent of code layout and of other load on the machine):
#   bench/engine_add_ir.sh build/release/bench/processors_bench TAG
# Runs BM_EngineAddCounted with 50,000 and 150,000 adds and divides the
# difference of add's inclusive instructions by the difference of calls, so
# the engine's set-up and the first adds of each series cancel out.
set -euo pipefail
BIN=$1; TAG=${2:-run}
for n in 50000 150000; do
  CG_ITERS=$n valgrind --tool=callgrind --callgrind-out-file=${TMPDIR:-/tmp}/cga-$TAG-$n.out $BIN --benchmark_filter='BM_EngineAddCounted' > /dev/null 2>&1
done
python3 - $TAG <<'PY'
import os,re,sys
tag=sys.argv[1]
def tot(n):
    fnmap={}; cur=None; cfn=None; calls=0; ir=0
    lines=open(os.path.join(os.environ.get('TMPDIR', '/tmp'), f'cga-{tag}-{n}.out')).read().split('\n')
    def res(s):
        m=re.match(r'\((\d+)\)(?: (.*))?',s)
        if not m: return s
        if m.group(2): fnmap[m.group(1)]=m.group(2)
        return fnmap.get(m.group(1),'?')
    i=0
    while i<len(lines):
        l=lines[i]
        if l.startswith('fn='): cur=res(l[3:])
        elif l.startswith('cfn='): cfn=res(l[4:])
        elif l.startswith('calls='):
            if cfn and 'AggregatorEngine::add' in cfn and 'BM_EngineAdd' in (cur or ''):
                calls+=int(l.split('=')[1].split()[0]); ir+=int(lines[i+1].split()[1])
            i+=1
        i+=1
    return calls,ir
c1,i1=tot(50000); c2,i2=tot(150000)
print(f"{tag}: calls {c1}->{c2}, steady Ir/add = {(i2-i1)/(c2-c1):.1f}, incl warmup avg {i2/c2:.1f}")
PY
