import sys
from cells import *
cell = sys.argv[1]
x = np.load("x_test_imdb.npy"); ref = np.load(f"ref_{cell}.npy")
E,K,U,b,Wd,bd = load_weights(cell)
Ef = E@K+b
def qpc(a): s=np.abs(a).max(0,keepdims=True)/127; return np.round(a/s)*s
def qpt(a): s=np.abs(a).max()/127; return np.round(a/s)*s
def qa(a, lo, hi): s=(hi-lo)/255; z=np.round(-128-lo/s); return (np.clip(np.round(a/s)+z,-128,127)-z)*s
def run(Et, Ut, hq=False, preq=None, fcq=None):
    h = np.zeros((len(x),32),np.float32); xs = Et[x]; pres=[]
    for t in range(MAXLEN):
        fc = h@Ut
        if fcq: fc = qa(fc, -fcq, fcq)
        pre = xs[:,t]+fc
        if preq: pre = qa(pre, -preq, preq)
        pres.append(np.abs(pre).max())
        h = np.tanh(pre)
        if hq: h = qa(h, -1, 1)
    y = 1/(1+np.exp(-(h@Wd+bd)))
    return f"max={np.abs(y-ref).max():.3f} agree={((y>.5)==(ref>.5)).mean()*100:.1f} premax={max(pres):.2f}"
print("float", run(Ef,U))
print("E pt", run(qpt(Ef),U))
print("U pc", run(Ef,qpc(U)))
print("h int8", run(Ef,U,hq=True))
for p in [2,4,8]: print("pre int8 range", p, run(Ef,U,preq=p))
print("fc int8 range 4", run(Ef,U,fcq=4))
