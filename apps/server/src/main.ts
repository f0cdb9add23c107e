console.log("ouroboros")
