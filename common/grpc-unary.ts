import type { handleUnaryCall, ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import { type TensorClawError, toGrpcError, toTensorClawError } from "./errors.js";
import type { Logger } from "./logger.js";

/**
 * The one way a TensorClaw unary gRPC handler answers: a value becomes the
 * response; anything thrown becomes a gRPC status through the error
 * catalogue (`toGrpcError`), so an error that is not a TensorClawError
 * leaves as a generic INTERNAL and its detail goes to the log only.
 */

/** The business logic of one unary method: the call in, the response (or a throw) out. */
export type UnaryLogic<Req, Res> = (call: ServerUnaryCall<Req, Res>) => Res | Promise<Res>;

/**
 * Logs a failed call one way. Our own faults (`internal`, which every
 * unknown error becomes) are errors; a dependency being down
 * (`unavailable`) is a warning; the caller's faults (bad arguments,
 * refused authentication, nothing to probe) are debug lines.
 */
export function logGrpcFailure(logger: Logger, method: string, err: TensorClawError): void {
  const fields = { method, code: err.code, why: err.message };
  if (err.code === "internal") logger.error({ err: err.cause ?? err, ...fields }, "gRPC call failed");
  else if (err.code === "unavailable") logger.warn({ err: err.cause ?? err, ...fields }, "gRPC call failed");
  else logger.debug(fields, "gRPC call refused");
}

/** Answers `callback` with the gRPC status for `err`, logged by {@link logGrpcFailure}. */
export function sendGrpcFailure(
  callback: sendUnaryData<never>,
  err: unknown,
  method: string,
  logger: Logger,
): void {
  const e = toTensorClawError(err);
  logGrpcFailure(logger, method, e);
  const { code, details } = toGrpcError(e);
  callback({ code, details });
}

/**
 * A grpc-js unary handler running `logic`. `method` names the call in the
 * log: its path, e.g. "/tensorclaw.v1.ProbeService/Probe".
 */
export function unaryHandler<Req, Res>(
  method: string,
  logger: Logger,
  logic: UnaryLogic<Req, Res>,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    new Promise<Res>((resolve) => resolve(logic(call))).then(
      (res) => callback(null, res),
      (err: unknown) => sendGrpcFailure(callback, err, method, logger),
    );
  };
}
