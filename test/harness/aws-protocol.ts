// Just enough of the AWS wire protocols to name an incoming call and to answer it with an error
// shaped as the real service would shape it, so the SDK's own error handling and retry
// classification run unchanged (see the fault injector).
import { randomUUID } from 'node:crypto';

export type AwsProtocol = 'ec2' | 'query' | 'json' | 'rpc-v2-cbor';

export interface AwsCall {
  /** The signing name from the SigV4 credential scope, e.g. `elasticloadbalancing`, `ec2`. */
  readonly service: string;
  /** The API operation, e.g. `ModifyRule`, `PutItem`. */
  readonly operation: string;
  readonly protocol: AwsProtocol;
  /** Form parameters of a query/ec2 request (empty for the other protocols). */
  readonly params: URLSearchParams;
}

/** Names the call in a buffered AWS request (query, EC2 query, JSON 1.0/1.1, RPCv2). */
export function identifyAwsCall(method: string, path: string, headers: Record<string, string | string[] | undefined>, body: Buffer): AwsCall {
  const auth = String(headers.authorization ?? '');
  const service = /Credential=[^/]+\/[^/]+\/[^/]+\/([^/]+)\//.exec(auth)?.[1] ?? 'unknown';
  const contentType = String(headers['content-type'] ?? '');
  const target = headers['x-amz-target'];
  if (typeof target === 'string') {
    return { service, operation: target.slice(target.lastIndexOf('.') + 1), protocol: 'json', params: new URLSearchParams() };
  }
  const rpc = /\/service\/[^/]+\/operation\/([^/?]+)/.exec(path);
  if (rpc?.[1]) return { service, operation: rpc[1], protocol: 'rpc-v2-cbor', params: new URLSearchParams() };
  const query = path.includes('?') ? path.slice(path.indexOf('?') + 1) : '';
  const params = new URLSearchParams(contentType.startsWith('application/x-www-form-urlencoded') ? body.toString('utf8') : query);
  const operation = params.get('Action') ?? `${method} ${path.split('?')[0]}`;
  return { service, operation, protocol: service === 'ec2' ? 'ec2' : 'query', params };
}

export interface AwsErrorResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

const xmlEscape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** An error response as the service behind `call` would send it. */
export function awsErrorResponse(call: AwsCall, status: number, code: string, message: string): AwsErrorResponse {
  const requestId = randomUUID();
  switch (call.protocol) {
    case 'ec2':
      return {
        status,
        headers: { 'content-type': 'text/xml;charset=UTF-8' },
        body:
          `<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>${xmlEscape(code)}</Code>` +
          `<Message>${xmlEscape(message)}</Message></Error></Errors><RequestID>${requestId}</RequestID></Response>`,
      };
    case 'query':
      return {
        status,
        headers: { 'content-type': 'text/xml', 'x-amzn-requestid': requestId },
        body:
          `<ErrorResponse><Error><Type>${status < 500 ? 'Sender' : 'Receiver'}</Type><Code>${xmlEscape(code)}</Code>` +
          `<Message>${xmlEscape(message)}</Message></Error><RequestId>${requestId}</RequestId></ErrorResponse>`,
      };
    case 'json':
    case 'rpc-v2-cbor':
      // RPCv2 CBOR is not answered in CBOR: the harness pins clients to protocols moto speaks.
      return {
        status,
        headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': requestId, 'x-amzn-errortype': code },
        body: JSON.stringify({ __type: code, message }),
      };
  }
}

/**
 * What each service answers when it throttles. EC2 says RequestLimitExceeded with a 503; the
 * query services (ELBv2, CloudWatch, SNS) say Throttling; the JSON services ThrottlingException.
 */
export function throttleResponse(call: AwsCall): AwsErrorResponse {
  if (call.protocol === 'ec2') return awsErrorResponse(call, 503, 'RequestLimitExceeded', 'Request limit exceeded.');
  if (call.protocol === 'query') return awsErrorResponse(call, 400, 'Throttling', 'Rate exceeded');
  return awsErrorResponse(call, 400, 'ThrottlingException', 'Rate exceeded');
}

/** A server-side failure: 500 InternalFailure-like, or 503 ServiceUnavailable-like. */
export function serverErrorResponse(call: AwsCall, status: number): AwsErrorResponse {
  const unavailable = status === 503;
  if (call.protocol === 'ec2') {
    return awsErrorResponse(call, status, unavailable ? 'Unavailable' : 'InternalError', 'An internal error has occurred');
  }
  if (call.protocol === 'query') {
    return awsErrorResponse(call, status, unavailable ? 'ServiceUnavailable' : 'InternalFailure', 'The request processing has failed because of an unknown error, exception or failure.');
  }
  return awsErrorResponse(call, status, unavailable ? 'ServiceUnavailableException' : 'InternalServerError', 'Internal server error');
}

// ---- EC2 query protocol output (for the stub of operations moto lacks) ----

/** EC2 XML names that are not the member name in lowerCamelCase (lists are `…Set` of `item`s). */
const EC2_XML_NAMES: Record<string, string> = {
  CapacityReservations: 'capacityReservationSet',
  SpotPlacementScores: 'spotPlacementScoreSet',
  Tags: 'tagSet',
  CapacityAllocations: 'capacityAllocationSet',
};

function ec2Xml(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => `<item>${ec2Xml(v)}</item>`).join('');
  if (typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => {
        const name = EC2_XML_NAMES[k] ?? k.charAt(0).toLowerCase() + k.slice(1);
        return `<${name}>${ec2Xml(v)}</${name}>`;
      })
      .join('');
  }
  return xmlEscape(String(value));
}

/** `output` (in the SDK's shape, e.g. `{ CapacityReservations: [...] }`) as EC2 answers it. */
export function ec2Response(operation: string, output: Record<string, unknown>): AwsErrorResponse {
  return {
    status: 200,
    headers: { 'content-type': 'text/xml;charset=UTF-8' },
    body:
      `<?xml version="1.0" encoding="UTF-8"?>\n<${operation}Response xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">` +
      `<requestId>${randomUUID()}</requestId>${ec2Xml(output)}</${operation}Response>`,
  };
}
