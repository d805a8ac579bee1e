// What the types must refuse: each line below is an error tsc reports.
import { connect } from "../../web_client/sdk/interpreter.js";

export async function misuse(): Promise<void> {
  const session = await connect({ interpretation: "whispered" });
  session.on("caption", (caption) => caption.translaton);
  session.on("no_such_event", () => undefined);
  session.setInterpretation("as it comes");
  session.setVolume("loud");
  await connect({ locale: "fr" });
}
