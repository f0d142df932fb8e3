(function(){
  var sortCol=-1, sortDir=1;
  function cellKey(td){var v=td.getAttribute('data-sort');if(v===null)v=td.textContent.trim();var n=parseFloat(v);return isNaN(n)?v.toLowerCase():n;}
  function apply(){
    var t=document.querySelector('table.sortable');if(!t)return;
    var q=(document.getElementById('filter')||{value:''}).value.toLowerCase();
    var body=t.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
    rows.forEach(function(r){r.style.display=r.textContent.toLowerCase().indexOf(q)>=0?'':'none';});
    if(sortCol>=0){rows.sort(function(a,b){var x=cellKey(a.cells[sortCol]),y=cellKey(b.cells[sortCol]);
      if(typeof x!==typeof y){x=String(x);y=String(y);}return x<y?-sortDir:x>y?sortDir:0;});
      rows.forEach(function(r){body.appendChild(r);});}
    Array.prototype.forEach.call(t.tHead.rows[0].cells,function(th,i){th.className=i===sortCol?(sortDir>0?'sorted-asc':'sorted-desc'):'';});
  }
  document.addEventListener('click',function(e){var th=e.target.closest('table.sortable th');if(!th)return;
    var i=th.cellIndex;if(sortCol===i)sortDir=-sortDir;else{sortCol=i;sortDir=1;}apply();});
  document.addEventListener('input',function(e){if(e.target.id==='filter')apply();});
  var live=document.getElementById('live');
  if(window.EventSource){
    var es=new EventSource('/events?path='+encodeURIComponent(location.pathname));
    es.addEventListener('update',function(ev){var d=JSON.parse(ev.data);var m=document.getElementById('content');
      var q=document.getElementById('filter');var qv=q?q.value:null;
      var typing=q&&document.activeElement===q;var s0=typing?q.selectionStart:0,s1=typing?q.selectionEnd:0;
      m.innerHTML=d.html;
      var q2=document.getElementById('filter');if(q2&&qv!==null)q2.value=qv;
      if(q2&&typing){q2.focus();q2.setSelectionRange(s0,s1);}  // an update never takes the filter from someone typing
      apply();
      document.body.setAttribute('data-updates',String(1+parseInt(document.body.getAttribute('data-updates')||'0',10)));});
    es.onopen=function(){live.className='live on';live.textContent='live';};
    es.onerror=function(){live.className='live';live.textContent='reconnecting…';};
  }
  apply();
})();
