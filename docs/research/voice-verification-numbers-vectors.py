import hmac,hashlib,base64
def b64d(s):
    s2=s.replace('-','+').replace('_','/')
    s2+= '='*((4-len(s2)%4)%4)
    return base64.b64decode(s2)
def md5b64(b): return base64.b64encode(hashlib.md5(b).digest()).decode() if b is not None else ''
def sig(secret, method, body, ctype, ts, path, empty_md5_as_blank=True):
    m = '' if (body in (None,b'') and empty_md5_as_blank) else md5b64(body if body is not None else b'')
    sts = f"{method}\n{m}\n{ctype}\nx-timestamp:{ts}\n{path}"
    return base64.b64encode(hmac.new(b64d(secret), sts.encode(), hashlib.sha256).digest()).decode(), m, sts
V=[
("A1 voice doc ACE","BeIukql3pTKJ8RGL5zo0DA==","POST",b'{"event":"ace","callid":"822aa4b7-05b4-4d83-87c7-1f835ee0b6f6_257","timestamp":"2014-09-24T10:59:41Z","version":1}',"application/json","2014-09-24T10:59:41Z","/sinch/callback/ace","Tg6fMyo8mj9pYfWQ9ssbx3Tc1BNC87IEygAfLbJqZb4="),
("A2 NET AuthTests","BeIukql3pTKJ8RGL5zo0DA==","POST",b'{"identity": {"type": "number", "endpoint": "+46700000000"}, "method": "sms"}',"application/json","2014-06-04T13:41:58Z","/verification/v1/verifications","h6rXrFayOoggyHW4ymnLlfSDkZZPg6j98lHzvOXVjvw="),
("A3 NET empty(null)","BeIukql3pTKJ8RGL5zo0DA==","POST",None,"application/json","2014-06-04T13:41:58Z","/verification/v1/verifications","srx3SkKXw/ryFJLfwFFzZTigPxR/1+9Ae+eB3olDIjM="),
("A4 JAVA AppAuthMgr","bXkta2V5LXNlY3JldA==","POST",b'{"identity":{"type":"number","endpoint":"+33444555666"},"method":"sms"}',"application/json; charset=UTF-8","2023-11-22T09:10:11.999Z","/path/pathParamValue","QP3OzQZVzRZAEev6DBLvJkgpiqyZPuXYsc7oyjUV0K8="),
("A5 JAVA verif","9876543210","POST",b'{"id":"018c25e1-7163-5677-b8fb-467d7b1cffa5","event":"VerificationResultEvent","method":"sms","identity":{"verified":false,"type":"number","endpoint":"+33628254417"},"status":"FAIL","reason":"Expired"}',"application/json; charset=utf-8","2023-12-01T15:01:20.0406449Z","/VerificationRequestEvent","xfKhO0XvlRNJraahUBEJzzi1f3Fn3pYO41/ZzwOHPaQ="),
("A6 NODE generate","app-secret","POST",b'{"id":"018d2104-aaa-bbbb-1234","price":{"amount":0.0308},"rate":{"amount":0.0}}',"application/json; charset=utf-8","2024-01-19T09:19:28.9372196Z","/webhook","p7hUz20oz16Fhfogs4Z0X+VA/Nhuu505I1alXYqwlKw="),
("A7 NODE validate dbl","app-secret","POST",b'{"id":"018d2104-aaa-bbbb-1234","price":{"amount":0.0308},"rate":{"amount":0.0}}',"application/json; charset=utf-8","x-timestamp:2024-01-19T09:19:28.9372196Z","/webhook","wC8XcoLQ22cxrOsUqqbWk+LHJ82wtqR/IgeIp9NG8LY="),
("A8 SMS legacy doc","JViE5vDor0Sw3WllZka15Q==","POST",b'{"message":"Hello world"}',"application/json","2014-06-04T13:41:58Z","/v1/sms/+46700000000","qDXMwzfaxCRS849c/2R0hg0nphgdHciTo7OdM6MsdnM="),
]
for name,sec,meth,body,ct,ts,path,exp in V:
    s,m,sts=sig(sec,meth,body,ct,ts,path)
    print(name, "md5=",m, "sig=",s, "MATCH" if s==exp else "MISMATCH (exp %s)"%exp)
# v2 python vector: string to sign given directly
sts="POST\n1B2M2Y8AsgTpgAmY7PhCfg==\napplication/json; charset=utf-8\nx-timestamp:2026-06-10T21:27:04.1466768Z\n/webhooks/voice-v2/call/answered"
s=base64.b64encode(hmac.new(b64d("BeIukql3pTKJ8RGL5zo0DA=="), sts.encode(), hashlib.sha256).digest()).decode()
print("V2-PY", s, s=="yb+8Wt8y1rn6/qIxq6oCrkX1t3ewmhitljHpWm91imI=")
print("md5 empty", md5b64(b''))
# empty-body alt for A3
s,m,_=sig("BeIukql3pTKJ8RGL5zo0DA==","POST",b'',"application/json","2014-06-04T13:41:58Z","/verification/v1/verifications",empty_md5_as_blank=False)
print("A3-alt (MD5 of empty)", m, s)
# numbers
N=[("N1 node","my-callback-secret",b'{"eventId":"01hpa0mww4m79q8j2dwn3ggbgz","timestamp":"2024-02-10T17:22:09.412722588","projectId":"37b62a7b-0177-abcd-efgh-e10f848de123","resourceId":"+17818510001","resourceType":"ACTIVE_NUMBER","eventType":"DEPROVISIONING_FROM_VOICE_PLATFORM","status":"SUCCEEDED","failureCode":null}',"b93021e0182c2772dbcdf4e8983ae8f409e78c3b"),
("N2 py old","my-callback-secret",b'{"eventId":"event_id","timestamp":"2025-04-08T10:38:04.854087603","projectId":"project-id","resourceId":"+1234567890","resourceType":"ACTIVE_NUMBER","eventType":"PROVISIONING_TO_VOICE_PLATFORM","status":"SUCCEEDED","failureCode":null,"internalFailureCode":null}',"d2107528d5d52897a97dc6e24e09a208036ccd83"),
("N3 py sinch_events","my-callback-secret",b'{"eventId":"01jr7stexp0znky34pj07dwp41","timestamp":"2025-04-07T09:38:04.85408760","projectId":"project-id","resourceId":"+1234567890","resourceType":"ACTIVE_NUMBER","eventType":"PROVISIONING_TO_VOICE_PLATFORM","status":"SUCCEEDED","failureCode":null,"internalFailureCode":null}',"8e58baa351ffa5e0d7eaef3c739d0d7aa6093da3"),
("N4 java","secret value",b'{"eventId":"01j3fycq0fyqq3gkgxb0g5ekbz","timestamp":"2024-07-23T14:02:14.415637289","projectId":"b8bae3c6-e7df-422b-9401-8ae3ee3e0aff","resourceId":"+12053017799","resourceType":"ACTIVE_NUMBER","eventType":"PROVISIONING_TO_VOICE_PLATFORM","status":"SUCCEEDED","failureCode":null}',"e289b8fac44491417aeceee28d2715840b5f1aca"),
]
for name,sec,body,exp in N:
    h=hmac.new(sec.encode(),body,hashlib.sha1).hexdigest()
    print(name,len(body),h,"MATCH" if h==exp else "MISMATCH")
print("---- derived A1 variants (computed here, not published)")
body=b'{"event":"ace","callid":"822aa4b7-05b4-4d83-87c7-1f835ee0b6f6_257","timestamp":"2014-09-24T10:59:41Z","version":1}'
for label,ct,ts,path,meth in [("ct charset","application/json; charset=utf-8","2014-09-24T10:59:41Z","/sinch/callback/ace","POST"),
  ("path+query","application/json","2014-09-24T10:59:41Z","/sinch/callback/ace?x=1","POST"),
  ("ts .000","application/json","2014-09-24T10:59:41.000Z","/sinch/callback/ace","POST"),
  ("GET","application/json","2014-09-24T10:59:41Z","/sinch/callback/ace","GET"),
  ("proxy prefix","application/json","2014-09-24T10:59:41Z","/api/sinch/voice","POST")]:
    s,_,_=sig("BeIukql3pTKJ8RGL5zo0DA==",meth,body,ct,ts,path)
    print(label,s)
print(len(body))
