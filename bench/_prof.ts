import { smsIngress } from "./sms";
const r = await smsIngress.run();
console.log(r);
process.exit(0);
