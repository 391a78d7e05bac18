"""combine-maps.py - a validation-only check, not part of glad: two mtd-tune.sh
candidates' validation maps combined pixel by pixel (A, B, A+B, max(A, B)) and
scored in numpy as glad does (top-250 mean; pooled pixel AUROC on every other
pixel; AUPRO over connected regions up to 30 % FPR), per fold and per family.
datasets/mtd/tuning.md (session 36, after the twenty-fifth run) has its output.

    /usr/bin/python3 datasets/mtd/checks/combine-maps.py CANDIDATE_DIR_A CANDIDATE_DIR_B

Each directory is a candidate's tune.sh output with --folds 4 (fold 0 in it,
fold J in fold-J/), read through its val-none-L12.scored.msgpack streams.
Needs numpy, scipy, scikit-learn and python3-msgpack-numpy."""
import os, sys, numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'formats', 'python'))
from gladstream import read
from sklearn.metrics import roc_auc_score
from scipy import ndimage
if len(sys.argv) != 3: sys.exit('usage: combine-maps.py CANDIDATE_DIR_A CANDIDATE_DIR_B')
A, B = sys.argv[1], sys.argv[2]
def load(d, f):
    p = d + ('' if f==0 else '/fold-%d'%f) + '/val-none-L12.scored.msgpack'
    _, recs = read(p)
    return [(r['id'], r.get('defect',''), int(r['label']), r['amap'][0].astype(np.float32), (r['mask'][0]>0)) for r in recs]
def topk(m,k=250): v=np.sort(m.ravel())[::-1]; return v[:k].mean()
def aupro(maps, masks, fpr_max=0.3, nt=100):
    allv=np.concatenate([m.ravel() for m in maps]); ths=np.quantile(allv, np.linspace(0.5,1,nt))[::-1]
    neg=np.concatenate([m[~k].ravel() for m,k in zip(maps,masks)])
    regs=[]
    for m,k in zip(maps,masks):
        lab,n=ndimage.label(k)
        for i in range(1,n+1): regs.append(m[lab==i])
    fprs=[];pros=[]
    for t in ths:
        fprs.append((neg>=t).mean()); pros.append(np.mean([ (r>=t).mean() for r in regs]))
    fprs=np.array(fprs); pros=np.array(pros); o=np.argsort(fprs); fprs=fprs[o]; pros=pros[o]
    keep=fprs<=fpr_max
    x=np.concatenate([[0],fprs[keep],[fpr_max]]); y=np.concatenate([[0],pros[keep],[pros[keep][-1] if keep.any() else 0]])
    return np.trapz(y,x)/fpr_max
def metrics(rows, maps):
    lab=np.array([r[2] for r in rows]); sc=np.array([topk(m) for m in maps])
    iau=roc_auc_score(lab,sc)
    pm=np.concatenate([m.ravel()[::2] for m in maps]); pk=np.concatenate([r[4].ravel()[::2] for r in rows])
    pau=roc_auc_score(pk,pm)
    pro=aupro(maps,[r[4] for r in rows])
    return np.array([iau,pau,pro])*100
res={}
for f in range(4):
    a=load(A,f); b=load(B,f)
    assert [x[0] for x in a]==[x[0] for x in b]
    fams=sorted(set(x[1] for x in a if x[2]==1))
    variants={'A':[x[3] for x in a],'B':[x[3] for x in b],'A+B':[x[3]+y[3] for x,y in zip(a,b)],
              'max':[np.maximum(x[3],y[3]) for x,y in zip(a,b)]}
    for name,maps in variants.items():
        m=metrics(a,maps); res.setdefault(name,[]).append(m)
        out='fold %d %-4s all %5.1f %5.1f %5.1f crit %5.1f'%(f,name,*m,m.mean())
        for fam in fams:
            idx=[i for i,x in enumerate(a) if x[2]==0 or x[1]==fam]
            mm=metrics([a[i] for i in idx],[maps[i] for i in idx]); out+=' | %s %5.1f'%(fam,mm.mean())
        print(out, flush=True)
for name,v in res.items():
    v=np.array(v); print('%-4s mean %5.1f %5.1f %5.1f crit %5.1f per fold %s'%(name,*v.mean(0),v.mean(),' '.join('%.1f'%x for x in v.mean(1))))
