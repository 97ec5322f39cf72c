const n=4,h=112,w=112,c=64,ho=56,wo=56,sh=2,sw=2,fh=3,fw=3,top=0,left=0;
const x=new Float32Array(n*h*w*c).map(()=>Math.random()); const g=new Float32Array(n*ho*wo*c); const out=new Float32Array(x.length);
const yv=new Float32Array(n*ho*wo*c);
// forward max
{ const rowStride=w*c; for (let b=0;b<n;b++) for (let oy=0;oy<ho;oy++) for (let ox=0;ox<wo;ox++) for (let ch=0;ch<c;ch++){ let m=-Infinity; for(let y=Math.max(0,oy*sh-top);y<Math.min(h,oy*sh-top+fh);y++) for(let xx=Math.max(0,ox*sw-left);xx<Math.min(w,ox*sw-left+fw);xx++){const v=x[b*h*rowStride+y*rowStride+xx*c+ch]; if(v>m)m=v;} yv[((b*ho+oy)*wo+ox)*c+ch]=m; } }
function run(){
  const rowStride = w * c;
  for (let b = 0; b < n; b++) {
    const image = b * h * rowStride;
    for (let oy = 0; oy < ho; oy++) {
      const y0 = Math.max(0, oy * sh - top);
      const y1 = Math.min(h, oy * sh - top + fh);
      for (let ox = 0; ox < wo; ox++) {
        const x0 = Math.max(0, ox * sw - left);
        const x1 = Math.min(w, ox * sw - left + fw);
        const corner = image + y0 * rowStride + x0 * c;
        const dyBase = ((b * ho + oy) * wo + ox) * c;
        for (let ch = 0; ch < c; ch++) {
          const target = yv[dyBase + ch];
          search: for (let y = y0, row = corner + ch; y < y1; y++, row += rowStride) {
            for (let i = row, end = row + (x1 - x0) * c; i < end; i += c) {
              if (x[i] === target) { out[i] += g[dyBase + ch]; break search; }
            }
          }
        }
      }
    }
  }
}
for (let k=0;k<5;k++){const t=performance.now(); run(); console.log((performance.now()-t).toFixed(1));}
