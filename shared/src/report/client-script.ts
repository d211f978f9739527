import { UNIT_COLORS } from './palette.ts';

/**
 * The report page's inline browser script, the hover read-out: one cursor across a service's
 * charts and a tooltip with the bucket's numbers, read from the block's `script.hover-data`
 * JSON (see `hoverData` in series.ts).
 */
export const CLIENT_SCRIPT = `
(function(){
  var colors=${JSON.stringify(UNIT_COLORS)};
  var tip=document.getElementById('tip');
  function esc(s){return String(s).replace(/[&<>"']/g,function(c){return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c];});}
  function fmt(v,d){if(v===null||v===undefined)return '–';return Number(v).toLocaleString('en-US',{maximumFractionDigits:d===undefined?1:d});}
  var blocks=document.querySelectorAll('.svc-block');
  Array.prototype.forEach.call(blocks,function(block){
    var el=block.querySelector('script.hover-data');
    if(!el)return;
    var data;
    try{data=JSON.parse(el.textContent);}catch(e){return;}
    var svgs=block.querySelectorAll('svg[data-chart]');
    function hide(){tip.style.display='none';Array.prototype.forEach.call(svgs,function(s){var c=s.querySelector('.cursor');if(c)c.setAttribute('visibility','hidden');});}
    function show(ev,svg){
      var r=svg.getBoundingClientRect();if(r.width<=0)return;
      var vx=(ev.clientX-r.left)/r.width*data.w;
      var minute=(vx-data.ml)/data.pw*data.duration;
      if(minute<0||minute>data.duration||!data.rows.length){hide();return;}
      var lo=0,hi=data.rows.length-1;
      while(lo<hi){var mid=(lo+hi+1)>>1;if(data.rows[mid][0]<=minute)lo=mid;else hi=mid-1;}
      var row=data.rows[lo];
      var x=data.ml+((row[0]+row[1])/2)/data.duration*data.pw;
      Array.prototype.forEach.call(svgs,function(s){var c=s.querySelector('.cursor');if(c){c.setAttribute('x1',x);c.setAttribute('x2',x);c.setAttribute('visibility','visible');}});
      var h='<b>minute '+row[0]+(row[1]!==row[0]?'–'+row[1]:'')+'</b> · mode <b>'+esc(row[2])+'</b><br>'+
        'demand '+fmt(row[3])+' rpm · served '+fmt(row[4])+' · failed '+fmt(row[5])+'<br>'+
        'p99 '+fmt(row[6],3)+' s (SLO '+data.slo+') · $'+fmt(row[8],2)+'/h · total $'+fmt(row[7],2)+
        '<table><tr><th></th><th>weight</th><th>served</th><th>ready</th><th>start</th><th>pend</th><th>floor</th><th>target</th><th>p99</th></tr>';
      data.units.forEach(function(u,i){var v=row[9][i]||[];h+='<tr><td><i style="background:'+colors[i%colors.length]+'"></i>'+esc(u)+'</td><td>'+fmt(v[0],0)+'</td><td>'+fmt(v[1])+'</td><td>'+fmt(v[2])+'</td><td>'+fmt(v[3])+'</td><td>'+fmt(v[4])+'</td><td>'+fmt(v[6])+'</td><td>'+fmt(v[7])+'</td><td>'+fmt(v[5],2)+'</td></tr>';});
      tip.innerHTML=h+'</table>';
      tip.style.display='block';
      var tx=ev.clientX+16,ty=ev.clientY+16,tw=tip.offsetWidth,th=tip.offsetHeight;
      if(tx+tw>window.innerWidth-8)tx=ev.clientX-tw-16;
      if(ty+th>window.innerHeight-8)ty=Math.max(8,ev.clientY-th-16);
      tip.style.left=tx+'px';tip.style.top=ty+'px';
    }
    Array.prototype.forEach.call(svgs,function(svg){
      svg.addEventListener('mousemove',function(ev){show(ev,svg);});
      svg.addEventListener('mouseleave',hide);
    });
  });
})();
`;
