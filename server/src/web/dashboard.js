// aquifer's dashboard: the job page follows its job. It long-polls
// /jobs/{id}/live (the cookie goes with it), appends the stream's new
// lines, and replaces the state and explanation, until the job has ended.
"use strict";

async function follow(stream) {
  const job = stream.dataset.job;
  let after = Number(stream.dataset.after);
  const status = document.getElementById("status");
  const following = document.getElementById("following");
  for (;;) {
    let page;
    try {
      const answer = await fetch(`/jobs/${job}/live?after=${after}`, {
        credentials: "same-origin",
        cache: "no-store",
      });
      if (answer.status === 401) {
        following.textContent = "Signed out: reload the page to sign in again.";
        return;
      }
      if (!answer.ok) {
        throw new Error(`the server answered ${answer.status}`);
      }
      page = await answer.json();
    } catch (e) {
      following.textContent = `Lost touch with the server (${e.message}); trying again.`;
      await new Promise((done) => setTimeout(done, 3000));
      continue;
    }
    for (const line of page.lines) {
      stream.append(line + "\n");
    }
    after = page.next;
    stream.dataset.after = String(after);
    status.innerHTML = page.status;
    if (page.ended) {
      stream.dataset.ended = "true";
      following.textContent = "The job has ended.";
      return;
    }
    following.textContent = "Following the job…";
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const stream = document.getElementById("stream");
  if (stream && stream.dataset.ended !== "true") {
    follow(stream);
  }
});
