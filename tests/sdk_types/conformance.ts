// Types the captured sandbox bodies are checked against, built only from the official SDK's types.
import type { APIErrorCode, APIResponseError, QueryDataSourceResponse } from "@notionhq/client";

/** The full object of a response that may also be a partial one (full objects carry a `url`). */
export type Full<Response> = Extract<Response, { url: string }>;

/** A data source query whose results are full pages, as the sandbox's calendar holds only pages. */
export type FullPagesQuery = Omit<QueryDataSourceResponse, "results"> & {
  results: Array<Full<QueryDataSourceResponse["results"][number]> & { object: "page" }>;
};

/** An error body the SDK turns into an APIResponseError (parseAPIErrorResponseBody in errors.js). */
export type ErrorBody = {
  object: "error";
  status: number;
  code: `${APIErrorCode}`;
  message: string;
  request_id?: string;
  additional_data?: APIResponseError["additional_data"];
};
